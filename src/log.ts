import { type DestinationStream, type Logger, pino } from 'pino';

// Anything that could carry a credential or key material is censored wherever it appears.
export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers["private-token"]',
  'req.headers["x-vault-token"]',
  'req.headers["idempotency-key"]',
  'headers.authorization',
  '*.token',
  '*.password',
  '*.privateKey',
  '*.private_key',
  '*["ssh-privatekey"]',
  '*.wrapToken',
  '*.clientToken',
  '*.client_token',
  'token',
  'privateKey',
  'wrapToken',
];

export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'deploykey-rotator' },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination,
  );
}

export type { Logger };
