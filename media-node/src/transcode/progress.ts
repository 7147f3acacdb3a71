// FFmpeg's progress, read from its stderr stats lines ("frame=  61 fps= 30 ... time=00:00:02.03 ... speed=1.01x").
// fluent-ffmpeg's own `progress` event runs ffprobe on the input first (an extra RTMP play), so we parse here.

export interface Progress {
  frame?: number;
  fps?: number;
  /** media time encoded so far, seconds */
  timeS?: number;
  /** encoding speed relative to realtime */
  speed?: number;
}

/** Parses one stats line; undefined for any other line (warnings, banners). */
export function parseProgressLine(line: string): Progress | undefined {
  if (!/\bspeed=\s*[\d.]+x/.test(line) && !/\bframe=\s*\d+/.test(line)) return undefined;
  const out: Progress = {};
  const num = (re: RegExp) => {
    const m = line.match(re);
    return m ? Number(m[1]) : undefined;
  };
  const frame = num(/\bframe=\s*(\d+)/);
  const fps = num(/\bfps=\s*([\d.]+)/);
  const speed = num(/\bspeed=\s*([\d.]+)x/);
  const time = line.match(/\btime=\s*(-?)(\d+):(\d+):([\d.]+)/);
  if (frame !== undefined) out.frame = frame;
  if (fps !== undefined && Number.isFinite(fps)) out.fps = fps;
  if (speed !== undefined && Number.isFinite(speed)) out.speed = speed;
  if (time && time[1] !== "-") out.timeS = Number(time[2]) * 3600 + Number(time[3]) * 60 + Number(time[4]);
  return out;
}
