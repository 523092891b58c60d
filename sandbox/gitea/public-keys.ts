// Gitea's checks of a submitted public key (`CheckPublicKeyString` in models/asymkey/ssh_key_parse.go)
// with the texts its errors carry, and the fingerprint it stores (`SHA256:…`, as `ssh-keygen -lf`
// prints it). The API answers 422 "Invalid key content: <error>" for any of these errors.
import { createPublicKey } from 'node:crypto';
import sshpk from 'sshpk';

export interface CheckedKey {
  /** The line Gitea stores and returns: `<type> <base64>` plus the comment, if one was sent. */
  content: string;
  /** `<type> <base64>`, what the SSH server matches on. */
  blob: string;
  fingerprint: string;
}

const SSH2_START = '---- BEGIN SSH2 PUBLIC KEY ----';
// `[ssh.minimum_key_sizes]` defaults; a type missing here (DSA) is refused.
const MINIMUM_KEY_SIZES: Record<string, number> = {
  ed25519: 256,
  'ed25519-sk': 256,
  ecdsa: 256,
  'ecdsa-sk': 256,
  rsa: 2047,
};
const BASE64 = /^[A-Za-z0-9+/]$/;

class KeyError extends Error {}

/**
 * The offset Go's `base64.StdEncoding.DecodeString` names in "illegal base64 data at input byte N",
 * or `undefined` when it decodes: padding is required, CR and LF are skipped.
 */
export function base64ErrorOffset(src: string): number | undefined {
  let si = 0;
  while (si < src.length) {
    let j = 0;
    while (j < 4) {
      if (si === src.length) return j === 0 ? undefined : si - j;
      const char = src[si++]!;
      if (BASE64.test(char)) {
        j += 1;
        continue;
      }
      if (char === '\n' || char === '\r') continue;
      if (char !== '=' || j < 2) return si - 1;
      return paddingErrorOffset(src, si, j);
    }
  }
  return undefined;
}

function paddingErrorOffset(src: string, afterFirstPad: number, quantumLength: number): number | undefined {
  let si = afterFirstPad;
  const skipNewlines = () => {
    while (si < src.length && (src[si] === '\n' || src[si] === '\r')) si += 1;
  };
  if (quantumLength === 2) {
    skipNewlines();
    if (si === src.length) return src.length;
    if (src[si] !== '=') return si - 1;
    si += 1;
  }
  skipNewlines();
  return si < src.length ? si : undefined;
}

function keyTypeOf(base64Key: string): string {
  const offset = base64ErrorOffset(base64Key);
  if (offset !== undefined) {
    throw new KeyError(
      `extractTypeFromBase64Key: invalid key format: illegal base64 data at input byte ${offset}`,
    );
  }
  const bytes = Buffer.from(base64Key, 'base64');
  // Gitea wraps a nil error here, and Go prints that as "%!w(<nil>)".
  if (bytes.length < 4) throw new KeyError('extractTypeFromBase64Key: invalid key format: %!w(<nil>)');
  const length = bytes.readUInt32BE(0);
  if (bytes.length < 4 + length) {
    throw new KeyError(`extractTypeFromBase64Key: invalid key format: not enough length ${length}`);
  }
  return bytes.subarray(4, 4 + length).toString('latin1');
}

/** Go's `strings.SplitN(s, " ", 3)`: the last part keeps the rest, empty parts included. */
function splitInThree(content: string): string[] {
  const first = content.indexOf(' ');
  if (first < 0) return [content];
  const second = content.indexOf(' ', first + 1);
  if (second < 0) return [content.slice(0, first), content.slice(first + 1)];
  return [content.slice(0, first), content.slice(first + 1, second), content.slice(second + 1)];
}

function pemToOpenSsh(content: string): string {
  const normalized = content.replace(/\r\n?/g, '\n');
  const block = /-----BEGIN ([^-]+)-----/.exec(normalized);
  if (!block) throw new KeyError('failed to parse PEM block containing the public key');
  if (block[1]!.includes('PRIVATE')) throw new KeyError('the provided key is a private key');
  try {
    const der = createPublicKey(normalized).export({ type: 'spki', format: 'pem' });
    // `ssh.MarshalAuthorizedKey` writes type and key only; sshpk would add "(unnamed)".
    return sshpk.parseKey(der, 'pem').toString('ssh').split(' ').slice(0, 2).join(' ');
  } catch (error) {
    throw new KeyError(
      `failed to parse DER encoded public key as either PKIX or PEM RSA Key: ${(error as Error).message}`,
    );
  }
}

function ssh2Content(content: string): { keyType: string; keyContent: string } {
  let keyContent = '';
  let continuation = false;
  for (const line of content.replace(/\r\n?/g, '\n').split('\n')) {
    if (continuation || /[:-]/.test(line)) continuation = line.endsWith('\\');
    else keyContent += line;
  }
  return { keyType: keyTypeOf(keyContent), keyContent };
}

/** `parseKeyString`: any accepted format to `<type> <base64> <comment>`. */
function parseKeyString(raw: string): string {
  let content = raw.trim();
  if (content.startsWith(SSH2_START)) {
    const { keyType, keyContent } = ssh2Content(content);
    return finishParse(keyType, keyContent, '');
  }
  if (content.includes('-----BEGIN')) content = pemToOpenSsh(content);
  content = content.replace(/\r?\n/g, '');
  const [first = '', second, third = ''] = splitInThree(content);
  const [keyType, keyContent] = second === undefined ? ['', first] : [first, second];
  const actualType = keyTypeOf(keyContent);
  if (keyType !== '' && keyType !== actualType) {
    throw new KeyError(`key type and content does not match: ${keyType} - ${actualType}`);
  }
  return finishParse(keyType || actualType, keyContent, third);
}

function finishParse(keyType: string, keyContent: string, comment: string): string {
  try {
    sshpk.parseKey(`${keyType} ${keyContent}`, 'ssh');
  } catch {
    throw new KeyError('invalid ssh public key: ssh: no key found');
  }
  return `${keyType} ${keyContent} ${comment}`;
}

function checkKeySize(key: sshpk.Key): void {
  const name = key.type === 'dsa' ? 'dsa' : key.type;
  const minimum = MINIMUM_KEY_SIZES[name];
  if (minimum === undefined) throw new KeyError(`key type is not allowed: ${name}`);
  if (key.size < minimum) throw new KeyError(`key length is not enough: got ${key.size}, needs ${minimum}`);
}

/** The checked key, or the message Gitea's 422 carries. */
export function checkPublicKey(raw: string): CheckedKey | { error: string } {
  try {
    const content = parseKeyString(raw).trim();
    const key = sshpk.parseKey(content, 'ssh');
    checkKeySize(key);
    const [type, data] = content.split(' ');
    return { content, blob: `${type} ${data}`, fingerprint: key.fingerprint('sha256').toString() };
  } catch (error) {
    if (error instanceof KeyError) return { error: `Invalid key content: ${error.message}` };
    throw error;
  }
}
