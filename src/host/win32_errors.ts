/**
 * Names of the Win32 error codes kconnect's Windows code meets (`winerror.h`), one table for
 * every part that calls Windows (the TUN driver, the control pipe, the credentials runner), so a
 * message names `ERROR_PIPE_BUSY` wherever it comes from.
 *
 * @module
 */

/** Win32 error codes by name. */
export const WIN32_ERRORS = {
  ERROR_SUCCESS: 0,
  ERROR_FILE_NOT_FOUND: 2,
  ERROR_PATH_NOT_FOUND: 3,
  ERROR_ACCESS_DENIED: 5,
  ERROR_INVALID_HANDLE: 6,
  ERROR_NOT_ENOUGH_MEMORY: 8,
  ERROR_INVALID_DATA: 13,
  ERROR_HANDLE_EOF: 38,
  ERROR_INVALID_PARAMETER: 87,
  ERROR_BROKEN_PIPE: 109,
  ERROR_BUFFER_OVERFLOW: 111,
  ERROR_SEM_TIMEOUT: 121,
  ERROR_INSUFFICIENT_BUFFER: 122,
  ERROR_ALREADY_EXISTS: 183,
  ERROR_BAD_EXE_FORMAT: 193,
  ERROR_PIPE_BUSY: 231,
  ERROR_NO_DATA: 232,
  ERROR_PIPE_NOT_CONNECTED: 233,
  ERROR_MORE_DATA: 234,
  ERROR_NO_MORE_ITEMS: 259,
  ERROR_DIRECTORY: 267,
  ERROR_PIPE_CONNECTED: 535,
  ERROR_OPERATION_ABORTED: 995,
  ERROR_IO_INCOMPLETE: 996,
  ERROR_IO_PENDING: 997,
  ERROR_NO_TOKEN: 1008,
  ERROR_NOT_FOUND: 1168,
  ERROR_PRIVILEGE_NOT_HELD: 1314,
  ERROR_NONE_MAPPED: 1332,
  ERROR_BAD_IMPERSONATION_LEVEL: 1346,
  ERROR_BAD_TOKEN_TYPE: 1349,
  ERROR_CANNOT_IMPERSONATE: 1368,
  ERROR_OBJECT_ALREADY_EXISTS: 5010,
} as const;

const NAMES = new Map<number, string>(
  Object.entries(WIN32_ERRORS).map(([name, value]) => [value, name]),
);

/**
 * The symbolic name of a Win32 error code, e.g. `ERROR_PIPE_BUSY`, or `error <n>`.
 *
 * @example
 * ```ts
 * import { win32ErrorName } from "./win32_errors.ts";
 * win32ErrorName(231); // "ERROR_PIPE_BUSY"
 * win32ErrorName(4242); // "error 4242"
 * ```
 */
export function win32ErrorName(code: number): string {
  return NAMES.get(code) ?? `error ${code}`;
}
