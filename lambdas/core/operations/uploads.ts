import { z } from 'zod';
import { UPLOAD_URL_SECONDS, type UploadSchema } from '../../ops-api/contract';
import { fileNameProblem } from '../files/classify-file';
import { PARTNER_REPORTS_FOLDER } from '../workflow/storage-keys';
import { ApiError } from './api-error';
import type { UploadSigner } from './ports';

export type Upload = z.infer<typeof UploadSchema>;

export interface UploadDeps {
  readonly signer: UploadSigner;
  readonly landingBucket: string;
  /** `incoming/`: a partner's landing folder is `<prefix><partner>/`, the SFTP home. */
  readonly landingPrefix: string;
  /** @default the system clock */
  readonly now?: () => Date;
}

/**
 * A partner as the landing zone names one: the SFTP user and the first folder below the prefix (partnerOf), with
 * the rule `--partner` and the polled sources take (letters, digits, dashes). Nothing else may land a file in
 * another folder, or in none.
 */
const PARTNER = /^[A-Za-z0-9-]+$/;
/** A folder name the embedded S3 can store (it keeps objects as files). */
const PARTNER_MAX_BYTES = 255;
/** Control characters: S3 stores them, but they make keys that listings, logs and SFTP clients garble. */
const hasControlCharacter = (name: string) => [...name].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f);

/** Why the landing zone would not take a file of this name at the top of a partner's folder, or undefined. */
function nameProblem(name: string): string | undefined {
  if (name.includes('/')) return 'a file name, without /';
  if (name.startsWith('.')) return 'no hidden file (a name starting with .), nor . or ..';
  if (hasControlCharacter(name)) return 'no control characters';
  if (name === PARTNER_REPORTS_FOLDER)
    return `not ${PARTNER_REPORTS_FOLDER}: the folder the pipeline writes its reports to`;
  // The SFTP server refuses a longer name at upload; the pipeline would quarantine it (classify-file.ts).
  return fileNameProblem(name);
}

const UploadRequestSchema = z.object(
  {
    partner: z
      .string({ error: 'required, a string' })
      .regex(PARTNER, { error: 'letters, digits and dashes only (a partner folder)' })
      .refine((partner) => Buffer.byteLength(partner) <= PARTNER_MAX_BYTES, {
        error: `at most ${PARTNER_MAX_BYTES} bytes`,
      }),
    name: z
      .string({ error: 'required, a string' })
      .min(1, { error: 'required' })
      .superRefine((name, context) => {
        const problem = nameProblem(name);
        if (problem) context.addIssue({ code: 'custom', message: problem });
      }),
  },
  { error: 'a JSON object {"partner", "name"}' },
);

/** The first broken rule of each field, named: `partner: letters, digits and dashes only (a partner folder)`. */
function refusal(error: z.ZodError): ApiError {
  const seen = new Set<string>();
  const messages: string[] = [];
  for (const issue of error.issues) {
    const field = issue.path.join('.') || 'body';
    if (seen.has(field)) continue;
    seen.add(field);
    messages.push(`${field}: ${issue.message}`);
  }
  return new ApiError('BadRequest', messages.join('; '));
}

/**
 * POST /v1/uploads: a pre-signed PUT of one file into a partner's landing folder, the HTTPS entry point beside
 * SFTP. The object lands where an SFTP upload would (`<prefix><partner>/<name>`), so the same Object Created rule
 * starts the same workflow; names the landing zone would refuse over SFTP are refused here, before any URL exists.
 * @throws ApiError BadRequest naming the field and the rule it breaks
 */
export async function presignedUpload(deps: UploadDeps, body: unknown): Promise<Upload> {
  const parsed = UploadRequestSchema.safeParse(body);
  if (!parsed.success) throw refusal(parsed.error);
  const { partner, name } = parsed.data;
  const now = (deps.now ?? (() => new Date()))();
  const signed = await deps.signer.presignPut(
    { bucket: deps.landingBucket, key: `${deps.landingPrefix}${partner}/${name}` },
    UPLOAD_URL_SECONDS,
  );
  return {
    url: signed.url,
    method: 'PUT',
    headers: { ...signed.headers },
    expiresAt: new Date(now.getTime() + UPLOAD_URL_SECONDS * 1000).toISOString(),
  };
}
