// The console's shell: sign-in, the project switcher, sign-out, messages and the hash router.

import {ApiError, scopeTo, session, signIn, signOut, whenExpired} from './api.js';
import {clear, h} from './dom.js';
import {imageDetails, imagesView} from './images.js';
import {jobsView, jobView} from './jobs.js';
import {bucketView, bucketsView, importView, keysView, quotaView} from './storage.js';

const $ = (id) => document.getElementById(id);

export const ui = {
  notice(text) { $('notice').textContent = text; },
  error(err) {
    const text = err instanceof ApiError ? err.describe() : String(err && err.message ? err.message : err);
    $('error').textContent = text;
    console.warn('openims console:', text); // eslint-disable-line no-console
  },
  clearMessages() { $('notice').textContent = ''; $('error').textContent = ''; },
  /** A notice for the next view (one that navigates away would otherwise clear it). */
  flash(text) { flashed = text; },
  /** Run an action, showing its failure in words; the result, or undefined after a failure. */
  async run(action) {
    try { return await action(); } catch (err) { if (err.name !== 'AbortError') ui.error(err); return undefined; }
  },
};

const ROUTES = [
  [/^#\/images$/, () => imagesView],
  [/^#\/images\/([^/]+)$/, (m) => (ctx) => imageDetails(ctx, decodeURIComponent(m[1]))],
  [/^#\/import$/, () => importView],
  [/^#\/jobs$/, () => jobsView],
  [/^#\/jobs\/([^/]+)$/, (m) => (ctx) => jobView(ctx, decodeURIComponent(m[1]))],
  [/^#\/buckets$/, () => bucketsView],
  [/^#\/buckets\/([^/]+)$/, (m) => (ctx) => bucketView(ctx, decodeURIComponent(m[1]))],
  [/^#\/keys$/, () => keysView],
  [/^#\/quota$/, () => quotaView],
];

let flashed = '';
let leaving = null; // aborts the current view's streams and requests when another one opens

function showSignIn(message) {
  // Nothing of the session stays in the page: its view (and the requests and streams it had
  // running), the project list and who was signed in.
  if (leaving) { leaving.abort(); leaving = null; }
  $('topbar').hidden = true;
  $('view').hidden = true;
  clear($('view'));
  clear($('project-switch'));
  $('who').textContent = '';
  ui.clearMessages();
  $('signin').hidden = false;
  $('signin-message').textContent = message || '';
  document.title = 'Sign in · openims console';
  ($('signin-account').value ? $('signin-user').value ? $('signin-password') : $('signin-user')
    : $('signin-account')).focus();
}

function fillSessionBar(s) {
  const picker = $('project-switch');
  clear(picker, s.projects.map((p) => h('option', {value: p.id, text: p.name, selected: p.id === s.projectId})));
  $('who').textContent = `${s.userName} @ ${s.account}`;
}

async function route() {
  const s = session.get();
  if (!s) { showSignIn(); return; }
  if (!location.hash.startsWith('#/')) {
    if (location.hash === '' || location.hash === '#') { location.replace('#/images'); return; }
    return; // an in-page anchor (the skip link)
  }
  const found = ROUTES.map(([re, make]) => [re.exec(location.hash), make]).find(([m]) => m);
  if (!found) { location.replace('#/images'); return; }
  if (leaving) leaving.abort();
  leaving = new AbortController();
  $('signin').hidden = true;
  $('topbar').hidden = false;
  fillSessionBar(s);
  ui.clearMessages();
  if (flashed) { ui.notice(flashed); flashed = ''; }
  for (const a of document.querySelectorAll('nav a')) {
    if (location.hash.startsWith(a.getAttribute('href'))) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  const view = $('view');
  clear(view);
  view.hidden = false;
  const ctx = {session: s, view, ui, signal: leaving.signal, go: (hash) => { location.hash = hash; }};
  const render = found[1](found[0]);
  await ui.run(() => render(ctx));
  const heading = view.querySelector('h1');
  if (heading) document.title = `${heading.textContent} · openims console`;
}

whenExpired(() => {
  // The token expired or was revoked: back to sign-in, saying why.
  if (!session.get()) return;
  session.clear();
  showSignIn('Your session has expired or was ended. Sign in again.');
});

function signInMessage(err) {
  if (err instanceof ApiError && err.status === 401) {
    return `The account, user name or password is wrong. ${err.requestId ? `(request id ${err.requestId})` : ''}`.trim();
  }
  if (err instanceof ApiError && err.status === 429) {
    return `This user is locked after too many failed sign-ins: ${err.message} ` +
      `${err.requestId ? `(request id ${err.requestId})` : ''}`.trim();
  }
  return err instanceof ApiError ? err.describe() : String(err);
}

function start() {
  $('signin-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const account = $('signin-account').value.trim();
    const user = $('signin-user').value.trim();
    const password = $('signin-password').value;
    if (!account || !user || !password) {
      $('signin-message').textContent = 'Enter the account, the user name and the password.';
      return;
    }
    $('signin-message').textContent = '';
    const button = e.target.querySelector('button');
    button.disabled = true;
    try {
      await signIn(account, user, password);
      $('signin-password').value = '';
      if (location.hash.startsWith('#/')) await route(); else location.hash = '#/images';
      $('main').focus();
    } catch (err) {
      $('signin-message').textContent = signInMessage(err);
      $('signin-password').select();
    } finally {
      button.disabled = false;
    }
  });
  $('signout').addEventListener('click', async () => {
    await signOut();
    showSignIn('You have signed out.');
  });
  $('project-switch').addEventListener('change', async (e) => {
    const s = session.get();
    const ok = await ui.run(() => scopeTo(s.token, e.target.value, s.projects));
    if (ok) { await route(); ui.notice(`Now working in project ${ok.projectName}.`); }
  });
  window.addEventListener('hashchange', route);
  route();
}

start();
