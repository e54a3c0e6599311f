// The HTTP API as the console uses it: the token in sessionStorage, sent as X-Auth-Token (never a cookie,
// never in a URL), and every failure turned into an ApiError that says what went wrong and its request id.

const KEY = 'openims.session';

export const session = {
  get() {
    try { return JSON.parse(sessionStorage.getItem(KEY) || 'null'); } catch { return null; }
  },
  set(value) { sessionStorage.setItem(KEY, JSON.stringify(value)); },
  clear() { sessionStorage.removeItem(KEY); },
};

export class ApiError extends Error {
  constructor(status, message, code, requestId) {
    super(message);
    this.status = status;
    this.code = code;
    this.requestId = requestId;
  }

  /** In words, with what support needs to find the request in the logs. */
  describe() {
    const parts = [this.message];
    const extra = [];
    if (this.code !== undefined && this.code !== null && String(this.code) !== String(this.status)) {
      extra.push(`code ${this.code}`);
    }
    if (this.status) extra.push(`HTTP ${this.status}`);
    if (this.requestId) extra.push(`request id ${this.requestId}`);
    if (extra.length) parts.push(`(${extra.join(', ')})`);
    return parts.join(' ');
  }
}

let onExpired = () => {};
/** What to do when the server no longer accepts the session's token (401 on a signed-in call). */
export function whenExpired(handler) { onExpired = handler; }

async function errorOf(resp) {
  const requestId = resp.headers.get('X-Request-Id') || undefined;
  let text = '';
  try { text = await resp.text(); } catch { /* the body is optional */ }
  let message = ''; let code;
  try {
    const body = JSON.parse(text);
    const err = body.error ?? body;
    if (typeof err === 'object' && err !== null) {
      message = err.message || err.error_msg || body.error_msg || body.message || err.title || '';
      code = err.code ?? body.error_code;
    } else if (typeof err === 'string') {
      message = err;
    }
  } catch {
    message = text.replace(/<[^>]*>/g, ' ').replace(/\s+/g, ' ').trim().slice(0, 300);
  }
  return new ApiError(resp.status, message || `The server answered ${resp.status} ${resp.statusText}.`, code,
    requestId);
}

/** One call: JSON in and out unless a Blob/string body or raw:true is given. */
export async function api(method, path, {body, headers = {}, raw = false, anonymous = false, signal} = {}) {
  const h = new Headers(headers);
  const current = session.get();
  if (current && !anonymous) h.set('X-Auth-Token', current.token);
  let payload = body;
  if (body !== undefined && !(body instanceof Blob) && typeof body !== 'string') {
    h.set('Content-Type', 'application/json');
    payload = JSON.stringify(body);
  }
  let resp;
  try {
    resp = await fetch(path, {method, headers: h, body: payload, credentials: 'omit', cache: 'no-store', signal});
  } catch (err) {
    if (err.name === 'AbortError') throw err;
    throw new ApiError(0, `The server could not be reached (${err.message}).`);
  }
  if (!resp.ok) {
    const error = await errorOf(resp);
    if (resp.status === 401 && current && !anonymous) onExpired(error);
    throw error;
  }
  if (raw) return resp;
  if (resp.status === 204) return null;
  const text = await resp.text();
  return text ? JSON.parse(text) : null;
}

function passwordIdentity(account, user, password) {
  return {methods: ['password'], password: {user: {name: user, password, domain: {name: account}}}};
}

async function token(auth) {
  const resp = await api('POST', '/v3/auth/tokens?nocatalog=1', {body: {auth}, raw: true, anonymous: true});
  const body = await resp.json();
  return {token: resp.headers.get('X-Subject-Token'), body: body.token};
}

/** Sign in: a domain-scoped password token, the projects it may scope to, then a token of the first. */
export async function signIn(account, user, password) {
  const domainToken = await token({identity: passwordIdentity(account, user, password),
    scope: {domain: {name: account}}});
  const resp = await fetch('/v3/auth/projects', {headers: {'X-Auth-Token': domainToken.token}, cache: 'no-store',
    credentials: 'omit'});
  if (!resp.ok) throw await errorOf(resp);
  const projects = (await resp.json()).projects.filter((p) => p.enabled !== false)
    .map((p) => ({id: p.id, name: p.name})).sort((a, b) => a.name.localeCompare(b.name));
  if (!projects.length) throw new ApiError(0, 'This user has no role on any project of the account.');
  return scopeTo(domainToken.token, projects[0].id, projects);
}

/** A token of another project, made from the current one (Keystone's token method). */
export async function scopeTo(currentToken, projectId, projects) {
  const scoped = await token({identity: {methods: ['token'], token: {id: currentToken}},
    scope: {project: {id: projectId}}});
  const value = {
    token: scoped.token, expiresAt: scoped.body.expires_at,
    userId: scoped.body.user.id, userName: scoped.body.user.name,
    account: scoped.body.user.domain.name, projectId: scoped.body.project.id,
    projectName: scoped.body.project.name, projects,
    roles: (scoped.body.roles || []).map((r) => r.name),
  };
  session.set(value);
  return value;
}

export async function signOut() {
  const current = session.get();
  session.clear();
  if (current) {
    // Revoke it too: a token copied out of this tab stops working.
    await fetch('/v3/auth/tokens', {method: 'DELETE', credentials: 'omit',
      headers: {'X-Auth-Token': current.token, 'X-Subject-Token': current.token}}).catch(() => {});
  }
}

export function enc(s) { return encodeURIComponent(s); }
/** An object key in a path: each segment encoded, the slashes kept. */
export function encKey(key) { return key.split('/').map(encodeURIComponent).join('/'); }

/**
 * Upload a File to PUT /obs/{bucket}/{key} with upload progress: XMLHttpRequest streams the File from disk,
 * it is never read into script memory. onProgress(loaded, total).
 */
export function uploadObject(bucket, key, file, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('PUT', `/obs/${enc(bucket)}/${encKey(key)}`);
    const current = session.get();
    if (current) xhr.setRequestHeader('X-Auth-Token', current.token);
    xhr.setRequestHeader('Content-Type', 'application/octet-stream');
    xhr.upload.addEventListener('progress', (e) => onProgress(e.loaded, e.lengthComputable ? e.total : file.size));
    xhr.addEventListener('load', () => {
      if (xhr.status >= 200 && xhr.status < 300) { onProgress(file.size, file.size); resolve(); return; }
      let message = `The upload failed: HTTP ${xhr.status}.`; let code;
      try { const err = JSON.parse(xhr.responseText).error; message = err.message || message; code = err.code; } catch {
        /* not JSON */ }
      const error = new ApiError(xhr.status, message, code, xhr.getResponseHeader('X-Request-Id') || undefined);
      if (xhr.status === 401) onExpired(error);
      reject(error);
    });
    xhr.addEventListener('error', () => reject(new ApiError(0, 'The upload was interrupted (network error).')));
    xhr.addEventListener('abort', () => reject(new ApiError(0, 'The upload was cancelled.')));
    xhr.send(file);
  });
}

/**
 * Follow GET /v1/{project}/jobs/{id}/events with fetch and a stream reader (EventSource cannot send
 * X-Auth-Token). onEvent(data) for each job event; resolves with the last one when the job ended.
 * Reconnects with Last-Event-ID after a dropped connection.
 */
export async function followJob(projectId, jobId, onEvent, signal) {
  let lastId = null; let last = null; let failures = 0;
  for (;;) {
    const headers = {Accept: 'text/event-stream'};
    if (lastId) headers['Last-Event-ID'] = lastId;
    try {
      const resp = await api('GET', `/v1/${enc(projectId)}/jobs/${enc(jobId)}/events`, {headers, raw: true, signal});
      const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = '';
      for (;;) {
        const {value, done} = await reader.read();
        if (done) break;
        buffer += value;
        let cut;
        while ((cut = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, cut); buffer = buffer.slice(cut + 2);
          let id = null; let data = '';
          for (const line of block.split('\n')) {
            if (line.startsWith('id: ')) id = line.slice(4);
            else if (line.startsWith('data: ')) data += line.slice(6);
          }
          if (!data) continue;
          if (id) lastId = id;
          last = JSON.parse(data);
          failures = 0;
          onEvent(last);
        }
      }
      if (last && (last.status === 'SUCCESS' || last.status === 'FAIL')) return last;
    } catch (err) {
      if (err.name === 'AbortError' || (err instanceof ApiError && err.status >= 400 && err.status < 500)) throw err;
      failures += 1;
      if (failures > 5) throw err;
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
}
