// Video ids: `vid_<ulid>`, minted at upload creation. Stream ids made by the Streams API start with `str_`, so
// one /play path serves both and the id alone says which record decides access.
export const VIDEO_ID_PATTERN = /^vid_[0-9A-Za-z]{10,40}$/;

export function isVideoId(id: string): boolean {
  return VIDEO_ID_PATTERN.test(id);
}
