import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mintTurnCredential } from "../../edge/src/calls/turn.ts";
import { launchChromium, newContext } from "../helpers/browser.ts";
import { type HarnessServer, startHarness } from "../helpers/call-harness.ts";
import { decodingPeers } from "../helpers/call-page.ts";
import { type EdgeServer, startEdge, TEST_SECRETS } from "../helpers/edge.ts";
import { mintHs256 } from "../helpers/jwt.ts";
import { startTurn, type TurnServer } from "../helpers/turn.ts";

// The TURN credentials the edge mints, against a real TURN server (coturn, `use-auth-secret`): Chromium gets a relay
// allocation with them and a call goes through the relay only; an expired credential, or one signed with another
// secret, is refused by the server (401).

const SECRET = "test-turn-secret-for-coturn-0123456789";

interface Harness {
  harness: { RoomClient: new (o: unknown) => { connect(): Promise<unknown> }; CallClient: new (o: unknown) => { join(t: unknown): Promise<void> }; fetchIceServers(base: string, token: string): Promise<{ iceServers: RTCIceServer[] }> };
  pulsecast?: unknown;
  clients: Record<string, unknown>;
}

/** In the page: gathers candidates with these ICE servers, relay only; what it got, and the errors the TURN server answered. */
function gatherRelay(page: Page, iceServers: RTCIceServer[]) {
  return page.evaluate(async (iceServers) => {
    const pc = new RTCPeerConnection({ iceServers, iceTransportPolicy: "relay" });
    const candidates: string[] = [];
    const errors: number[] = [];
    pc.onicecandidate = (e) => e.candidate && candidates.push(e.candidate.candidate);
    pc.onicecandidateerror = (e) => errors.push((e as RTCPeerConnectionIceErrorEvent).errorCode);
    pc.addTransceiver("audio");
    const done = new Promise<void>((resolve) => pc.addEventListener("icegatheringstatechange", () => pc.iceGatheringState === "complete" && resolve()));
    await pc.setLocalDescription();
    await done;
    pc.close();
    return { relay: candidates.filter((c) => c.includes(" typ relay ")), errors };
  }, iceServers);
}

describe("TURN credentials against coturn (Chromium)", { timeout: 120_000 }, () => {
  let edge: EdgeServer;
  let turn: TurnServer;
  let browser: Browser;
  let harness: HarnessServer;

  beforeAll(async () => {
    turn = await startTurn(SECRET);
    edge = await startEdge({ CALL_STUN_URLS: "none", CALL_TURN_URLS: turn.url, CALL_TURN_SECRET: SECRET, CALL_TURN_TTL_S: "300" });
    browser = await launchChromium({ media: true });
    harness = await startHarness();
  });
  afterAll(async () => {
    await browser?.close();
    await edge?.stop();
    await turn?.stop();
    await harness?.close();
  });

  const harnessPage = async () => {
    const page = await (await newContext(browser)).newPage();
    await page.goto(harness.url);
    await page.waitForFunction(() => "harness" in globalThis);
    return page;
  };
  const jwt = (sub: string) => mintHs256(TEST_SECRETS.JWT_SECRET, { sub, claims: { name: sub } });

  it("the edge's credential gets a relay allocation; an expired one and a wrong secret's are refused with 401", async () => {
    const page = await harnessPage();
    const answer = await page.evaluate(({ base, token }) => (globalThis as unknown as Harness).harness.fetchIceServers(base, token), { base: edge.url, token: await jwt("ada") });
    expect(answer.iceServers).toEqual([{ urls: [turn.url], username: expect.stringMatching(/^\d+:ada$/), credential: expect.any(String) }]);
    const granted = await gatherRelay(page, answer.iceServers);
    expect(granted.relay.length).toBeGreaterThan(0);
    expect(granted.relay[0]).toContain("127.0.0.1");
    expect(granted.errors).toEqual([]);

    const expired = await mintTurnCredential(SECRET, "ada", 60, Math.floor(Date.now() / 1000) - 3600);
    const late = await gatherRelay(page, [{ urls: [turn.url], username: expired.username, credential: expired.credential }]);
    expect(late.relay).toEqual([]);
    expect(late.errors).toContain(401);

    const forged = await mintTurnCredential("not-the-turn-servers-secret-0123456789", "ada", 600);
    const wrong = await gatherRelay(page, [{ urls: [turn.url], username: forged.username, credential: forged.credential }]);
    expect(wrong.relay).toEqual([]);
    expect(wrong.errors).toContain(401);
  });

  it("a call with relay-only peer connections: media both ways through coturn", async () => {
    const page = await harnessPage();
    const roomId = `turn-${Date.now().toString(36)}`;
    for (const name of ["amy", "ben"]) {
      await page.evaluate(
        async ({ name, roomId, token, base }) => {
          const w = globalThis as unknown as Harness;
          w.clients ??= {};
          const room = new w.harness.RoomClient({ baseUrl: base, roomId, token });
          await room.connect();
          const call = new w.harness.CallClient({ room, iceServers: () => w.harness.fetchIceServers(base, token), iceTransportPolicy: "relay" });
          const media = await navigator.mediaDevices.getUserMedia({ audio: true, video: { width: 320, height: 180 } });
          await call.join({ audio: media.getAudioTracks()[0], camera: media.getVideoTracks()[0] });
          w.clients[name] = call;
        },
        { name, roomId, token: await jwt(name), base: edge.url },
      );
    }
    const decodedBy = async (name: string) => {
      await page.evaluate((name) => ((globalThis as unknown as Harness).pulsecast = { call: (globalThis as unknown as Harness).clients[name] }), name);
      return decodingPeers(page, { tiles: false });
    };
    await expect.poll(() => decodedBy("amy"), { timeout: 30_000 }).toEqual(["ben"]);
    await expect.poll(() => decodedBy("ben"), { timeout: 30_000 }).toEqual(["amy"]);
    // The selected pair is relay to relay: the media went through the TURN server.
    const types = await page.evaluate(async () => {
      const call = (globalThis as unknown as Harness).clients.amy as { peers: Map<string, unknown>; peerConnection(id: string): RTCPeerConnection };
      const pc = call.peerConnection([...call.peers.keys()][0]!);
      const stats = await pc.getStats();
      let local = "";
      let remote = "";
      stats.forEach((s: { type: string; nominated?: boolean; state?: string; localCandidateId?: string; remoteCandidateId?: string }) => {
        if (s.type === "candidate-pair" && s.nominated && s.state === "succeeded") {
          local = (stats.get(s.localCandidateId!) as { candidateType: string }).candidateType;
          remote = (stats.get(s.remoteCandidateId!) as { candidateType: string }).candidateType;
        }
      });
      return [local, remote];
    });
    expect(types).toEqual(["relay", "relay"]);
  });
});
