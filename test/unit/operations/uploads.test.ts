import { ApiError } from '../../../lambdas/core/operations/api-error';
import type { UploadSigner } from '../../../lambdas/core/operations/ports';
import { presignedUpload } from '../../../lambdas/core/operations/uploads';
import { UPLOAD_URL_SECONDS, UploadSchema } from '../../../lambdas/ops-api/contract';

/**
 * presignedUpload: what it signs and what it refuses. The signer is the port's in-memory stand-in, recording what
 * it was asked; the S3 signer is tested against the embedded S3 (test/integration/upload-signer.test.ts).
 */
function recordingSigner(headers: Record<string, string> = {}) {
  const asked: { bucket: string; key: string; expiresSeconds: number }[] = [];
  const signer: UploadSigner = {
    presignPut: async (ref, expiresSeconds) => {
      asked.push({ ...ref, expiresSeconds });
      return { url: `https://signed.example/${ref.bucket}/${ref.key}`, headers };
    },
  };
  return { signer, asked };
}

const NOW = new Date('2026-11-24T03:00:00.000Z');

describe('presignedUpload', () => {
  it("signs a PUT of the file into the partner's landing folder, valid for UPLOAD_URL_SECONDS", async () => {
    const { signer, asked } = recordingSigner();
    const upload = await presignedUpload(
      { signer, landingBucket: 'landing', landingPrefix: 'incoming/', now: () => NOW },
      { partner: 'acme', name: 'users_acme_20261124_001.csv.gz' },
    );
    expect(UploadSchema.parse(upload)).toEqual(upload);
    expect(upload).toEqual({
      url: 'https://signed.example/landing/incoming/acme/users_acme_20261124_001.csv.gz',
      method: 'PUT',
      headers: {},
      expiresAt: new Date(NOW.getTime() + UPLOAD_URL_SECONDS * 1000).toISOString(),
    });
    expect(asked).toEqual([
      {
        bucket: 'landing',
        key: 'incoming/acme/users_acme_20261124_001.csv.gz',
        expiresSeconds: UPLOAD_URL_SECONDS,
      },
    ]);
  });

  it('hands on the headers the signer says the client must send', async () => {
    const { signer } = recordingSigner({ 'content-type': 'text/csv' });
    const upload = await presignedUpload(
      { signer, landingBucket: 'landing', landingPrefix: 'in/' },
      { partner: 'Acme-2', name: 'any name, even unknown kind.txt' },
    );
    expect(upload.headers).toEqual({ 'content-type': 'text/csv' });
    expect(upload.url).toBe('https://signed.example/landing/in/Acme-2/any name, even unknown kind.txt');
  });

  it.each([
    ['no body', undefined, 'body: a JSON object {"partner", "name"}'],
    ['a body that is no object', 'partner=acme', 'body: a JSON object {"partner", "name"}'],
    ['no partner', { name: 'a.csv' }, 'partner: required, a string'],
    ['no name', { partner: 'acme' }, 'name: required, a string'],
    ['a name that is no string', { partner: 'acme', name: 7 }, 'name: required, a string'],
    ['an empty partner', { partner: '', name: 'a.csv' }, 'partner: letters, digits and dashes only (a partner folder)'],
    [
      'a partner path',
      { partner: '../other', name: 'a.csv' },
      'partner: letters, digits and dashes only (a partner folder)',
    ],
    [
      'a partner with a /',
      { partner: 'acme/sub', name: 'a.csv' },
      'partner: letters, digits and dashes only (a partner folder)',
    ],
    ['a partner too long', { partner: 'a'.repeat(256), name: 'a.csv' }, 'partner: at most 255 bytes'],
    ['an empty name', { partner: 'acme', name: '' }, 'name: required'],
    ['a name with a folder', { partner: 'acme', name: 'sub/a.csv' }, 'name: a file name, without /'],
    ['a name that climbs out', { partner: 'acme', name: '../a.csv' }, 'name: a file name, without /'],
    ['..', { partner: 'acme', name: '..' }, 'name: no hidden file (a name starting with .), nor . or ..'],
    [
      'a hidden file',
      { partner: 'acme', name: '.hidden.csv' },
      'name: no hidden file (a name starting with .), nor . or ..',
    ],
    ['a control character', { partner: 'acme', name: 'a\nb.csv' }, 'name: no control characters'],
    [
      'the reports folder',
      { partner: 'acme', name: 'reports' },
      'name: not reports: the folder the pipeline writes its reports to',
    ],
    [
      'a name too long',
      { partner: 'acme', name: `${'x'.repeat(197)}.csv` },
      'name: file name too long: 201 bytes, at most 200',
    ],
    [
      'both fields wrong',
      { partner: 'a b', name: '.x' },
      'partner: letters, digits and dashes only (a partner folder); name: no hidden',
    ],
  ])('refuses %s: 400 naming the field and the rule', async (_case, body, message) => {
    const { signer, asked } = recordingSigner();
    const attempt = presignedUpload({ signer, landingBucket: 'landing', landingPrefix: 'incoming/' }, body);
    await expect(attempt).rejects.toBeInstanceOf(ApiError);
    await expect(attempt).rejects.toMatchObject({ code: 'BadRequest', status: 400 });
    await expect(attempt).rejects.toThrow(message);
    expect(asked).toEqual([]);
  });
});
