import { createHash } from 'node:crypto';

/** The SHA-256 fingerprint of an SSH public key blob, as `ssh-keygen -lf` prints it: `SHA256:<base64, no padding>`. */
export const keyFingerprint = (publicSsh: Buffer) =>
  `SHA256:${createHash('sha256').update(publicSsh).digest('base64').replace(/=+$/, '')}`;
