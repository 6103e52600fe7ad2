/**
 * `/api/` errors keep upstream epoch's JSON shape, `{"error": "<message>"}`, extended with a
 * machine-readable `code`. They are raised as `ApiProblem` and rendered by the app's one error
 * handler (see `../http/errors.ts`).
 */
export class ApiProblem extends Error {
  constructor(
    readonly status: 400 | 403 | 404 | 405 | 409 | 413 | 415 | 416 | 500 | 503,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}
