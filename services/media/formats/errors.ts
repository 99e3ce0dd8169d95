/**
 * The bytes are not a file of the kind they claim to be: truncated, corrupt,
 * or a container we do not store. Handlers answer InvalidArgument with the
 * message, which names the format and the problem but never echoes bytes.
 */
export class MediaFormatError extends Error {
  override readonly name = "MediaFormatError";
}

export function fail(message: string): never {
  throw new MediaFormatError(message);
}
