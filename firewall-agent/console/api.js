// The console's one way to the agent: catalogue calls through /console/api/call/{Action}, with
// the session's CSRF token and the chosen region; and the small DOM helpers every page uses.
'use strict';

const Console = {
  session: null,
  region: localStorage.getItem('fw-console-region') || 'local',
};

/// An API error as the agent answered it: AWS's code and message (and a dry run's preview).
class ApiError extends Error {
  constructor(body, status) {
    super((body.Error && body.Error.Message) || ('HTTP ' + status));
    this.code = (body.Error && body.Error.Code) || 'InternalError';
    this.preview = body.Preview || null;
  }
}

async function loadSession() {
  const response = await fetch('/console/api/session', { credentials: 'same-origin' });
  if (response.status === 401) { location.href = '/console/sign-in'; throw new Error('signed out'); }
  Console.session = await response.json();
}

/// Runs `action` with `members` in the current region (or `region`); resolves to the response
/// members, rejects with an ApiError.
async function call(action, members = {}, region = Console.region) {
  const response = await fetch('/console/api/call/' + encodeURIComponent(action), {
    method: 'POST',
    credentials: 'same-origin',
    headers: {
      'content-type': 'application/json',
      'x-csrf-token': Console.session.CsrfToken,
      'x-firewall-region': region,
    },
    body: JSON.stringify(members),
  });
  const body = await response.json().catch(() => ({}));
  if (response.status === 401) { location.href = '/console/sign-in'; }
  if (!response.ok) throw new ApiError(body, response.status);
  return body;
}

/// A dry run of a change: resolves to its preview (DryRunOperation), rejects with any other error.
async function preview(action, members) {
  try {
    await call(action, Object.assign({ DryRun: true }, members));
  } catch (e) {
    if (e.code === 'DryRunOperation') return e.preview;
    throw e;
  }
  throw new Error('the dry run did not answer DryRunOperation');
}

/// An element: h('td', {class: 'x', onclick: f}, 'text', child, …). Text is never parsed as HTML.
function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else if (k === 'value') node.value = v;
    else if (k === 'checked') node.checked = !!v;
    else node.setAttribute(k, v === true ? '' : v);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function show(...nodes) {
  const view = document.getElementById('view');
  view.replaceChildren(...nodes);
}

/// The status line: `ok` true for a success, false for an error (its code and message).
function flash(message, ok = true) {
  const line = document.getElementById('flash');
  line.hidden = false;
  line.className = ok ? 'ok' : 'fail';
  line.textContent = message;
}

/// The status line the next view shows once drawn (after a change that moves to another view).
function flashNext(message) { Console.pendingFlash = message; }

/// Shows the view of `hash` (drawn anew when it is the current one) with `message` once drawn.
function navigate(hash, message) {
  if (message) flashNext(message);
  if (location.hash === hash) route(); else location.hash = hash;
}

function clearFlash() {
  const line = document.getElementById('flash');
  line.hidden = true;
  line.textContent = '';
}

/// An ApiError as the user reads it.
function failed(e) { flash(e.code ? `${e.code}: ${e.message}` : String(e.message || e), false); }

function tagValue(tags, key) {
  const tag = (tags || []).find(t => t.Key === key);
  return tag ? tag.Value : '';
}
