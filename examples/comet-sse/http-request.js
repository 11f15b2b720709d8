// http-request.js - reads the head of an HTTP/1.1 request (request line + headers) from bytes
// as they arrive, strictly: anything malformed is an error the server answers with 400 and a
// close. No allocation until the head is complete; the head is capped at 8 KiB (431 past it).
'use strict';

const MAX_HEAD = 8192;
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// Field values: visible ASCII, obs-text, space and tab (RFC 9110 5.5); no CR, LF or NUL.
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;
const TARGET = /^\/[\x21-\x7e]*$/;

/**
 * @param {Buffer} buf bytes received so far on the connection
 * @returns {{ incomplete: true } | { error: 400 | 431, reason: string } |
 *           { method: string, target: string, path: string, query: string, headers: Map<string, string>, headLength: number }}
 */
function readRequestHead(buf) {
  const end = buf.indexOf('\r\n\r\n');
  if (end < 0) {
    if (buf.length > MAX_HEAD) return { error: 431, reason: 'request head too large' };
    return { incomplete: true };
  }
  if (end + 4 > MAX_HEAD) return { error: 431, reason: 'request head too large' };
  const lines = buf.toString('latin1', 0, end).split('\r\n');
  const parts = lines[0].split(' ');
  if (parts.length !== 3) return { error: 400, reason: 'malformed request line' };
  const [method, target, version] = parts;
  if (!TOKEN.test(method)) return { error: 400, reason: 'malformed method' };
  if (!TARGET.test(target)) return { error: 400, reason: 'malformed request target' };
  if (version !== 'HTTP/1.1' && version !== 'HTTP/1.0') return { error: 400, reason: 'unsupported HTTP version' };
  const headers = new Map();
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i];
    const colon = line.indexOf(':');
    if (colon <= 0) return { error: 400, reason: 'malformed header line' };
    const name = line.slice(0, colon);
    if (!TOKEN.test(name)) return { error: 400, reason: 'malformed header name' };
    const value = trimBlanks(line, colon + 1);
    if (!FIELD_VALUE.test(value)) return { error: 400, reason: 'malformed header value' };
    const key = name.toLowerCase();
    // Two Content-Length or Host headers are a smuggling risk: refuse.
    if ((key === 'content-length' || key === 'host') && headers.has(key)) return { error: 400, reason: `duplicate ${key}` };
    headers.set(key, headers.has(key) ? `${headers.get(key)}, ${value}` : value);
  }
  if (version === 'HTTP/1.1' && !headers.has('host')) return { error: 400, reason: 'missing Host header' };
  const cl = headers.get('content-length');
  if (cl !== undefined && !/^[0-9]{1,9}$/.test(cl)) return { error: 400, reason: 'malformed Content-Length' };
  if (headers.has('transfer-encoding')) return { error: 400, reason: 'Transfer-Encoding is not supported here' };
  const q = target.indexOf('?');
  return {
    method,
    target,
    path: q < 0 ? target : target.slice(0, q),
    query: q < 0 ? '' : target.slice(q + 1),
    headers,
    headLength: end + 4,
  };
}

module.exports = { readRequestHead, MAX_HEAD };

// Optional whitespace (SP / HTAB) around a field value, trimmed with index loops: the regex
// /^[ \t]+|[ \t]+$/g retries its second alternative from every blank of a long inner run, which
// is quadratic (a header of 8,000 inner blanks took ~50 ms): a cheap way to stall the JS thread.
function trimBlanks(line, from) {
  let start = from;
  let end = line.length;
  while (start < end && (line.charCodeAt(start) === 32 || line.charCodeAt(start) === 9)) start++;
  while (end > start && (line.charCodeAt(end - 1) === 32 || line.charCodeAt(end - 1) === 9)) end--;
  return line.slice(start, end);
}
