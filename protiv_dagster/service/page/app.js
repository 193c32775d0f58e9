// The integration page: plain JavaScript over the service's API, authenticated by the page's
// cookie session; every unsafe call sends the session's CSRF token. Outside text (vendor reasons,
// names) is only ever set as textContent, never as HTML.
"use strict";

const POLL_MS = 1500; // while a sync runs or its ProPays are still to come
const IDLE_POLL_MS = 30_000; // otherwise: the daemon's refreshes show without a reload
const TWO_WEEKS_DAYS = 14;
const OAUTH_LABEL = "QuickBooks Time"; // the one vendor connected through OAuth
const RETURN_QUERY = ["company_id", "outcome", "reason"];
let session = null;
let company = null;
let returned = null; // the OAuth callback's outcome, taken from the address bar on load
let integrations = [];
let pollTimer = null;
let lastStatus = null;

const $ = (id) => document.getElementById(id);

function el(tag, attributes = {}, text = null) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  if (text !== null) node.textContent = text;
  return node;
}

async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (!["GET", "HEAD"].includes(method) && session) headers["X-CSRF-Token"] = session.csrf_token;
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "same-origin",
  });
  let data = null;
  if (response.status !== 204) {
    try {
      data = await response.json();
    } catch (error) {
      data = null;
    }
  }
  if (response.status === 401 && path !== "/session") showLogin("Your session has ended: log in again.");
  return { status: response.status, data, headers: response.headers };
}

function problems(data) {
  if (!data || !Array.isArray(data.detail)) return "Something went wrong.";
  return data.detail.map((p) => (p.field ? `${p.field}: ${p.message}` : p.message)).join("\n");
}

function daysAgo(days) {
  const day = new Date();
  day.setDate(day.getDate() - days);
  const pad = (n) => String(n).padStart(2, "0");
  return `${day.getFullYear()}-${pad(day.getMonth() + 1)}-${pad(day.getDate())}`;
}

function when(iso) {
  return iso ? new Date(iso).toLocaleString() : "never";
}

// -- the OAuth return ---------------------------------------------------------------------------
// The callback sends the browser here with ?company_id=..&outcome=connected|failed&reason=..: read
// once, then taken off the address bar so a reload or a bookmark does not show it again. The reason
// is outside text (textContent only); the company id only preselects an operator's company.
function takeReturn() {
  const url = new URL(window.location.href);
  if (!RETURN_QUERY.some((name) => url.searchParams.has(name))) return null;
  const outcome = url.searchParams.get("outcome");
  const found = {
    connected: outcome === "connected",
    reason: (url.searchParams.get("reason") || "").trim(),
    companyId: (url.searchParams.get("company_id") || "").trim(),
  };
  for (const name of RETURN_QUERY) url.searchParams.delete(name);
  window.history.replaceState(window.history.state, "", `${url.pathname}${url.search}${url.hash}`);
  return ["connected", "failed"].includes(outcome) ? found : null;
}

function showNotice(outcome) {
  const box = $("notice");
  const text = outcome.connected
    ? `${OAUTH_LABEL} is connected: the initial sync is under way`
    : `${OAUTH_LABEL} was not connected: ${outcome.reason || "no reason was given"}`;
  // A new node with its role: a status is announced politely, a failure at once (alert).
  const message = el("p", { id: "notice-message", role: outcome.connected ? "status" : "alert" }, text);
  const dismiss = el("button", { type: "button", class: "link" }, "Dismiss");
  dismiss.addEventListener("click", hideNotice);
  box.className = `notice ${outcome.connected ? "ok" : "bad"}`;
  box.replaceChildren(message, dismiss);
  box.hidden = false;
}

function hideNotice() {
  $("notice").hidden = true;
  $("notice").replaceChildren();
}

// -- login ------------------------------------------------------------------------------------
function showLogin(message) {
  stopPolling();
  session = null;
  company = null;
  $("app").hidden = true;
  $("who").hidden = true;
  $("login").hidden = false;
  $("login-error").hidden = !message;
  $("login-error").textContent = message || "";
}

async function logIn(event) {
  event.preventDefault();
  const token = $("login-token").value.trim();
  const answer = await api("POST", "/session", { token });
  if (answer.status !== 201) {
    showLogin(problems(answer.data));
    return;
  }
  $("login-token").value = "";
  await start(answer.data);
}

async function logOut() {
  await api("DELETE", "/session");
  showLogin("Logged out.");
}

async function start(opened) {
  session = opened;
  company = null;
  lastStatus = null;
  $("login").hidden = true;
  $("who").hidden = false;
  $("who-name").textContent = `${session.subject} (${session.role})`;
  const operator = session.role === "operator" && !session.company_id;
  $("company-picker").hidden = !operator;
  $("company-view").hidden = true;
  $("company-input").value = "";
  $("company-options").replaceChildren();
  $("app").hidden = false;
  const listed = await api("GET", "/integrations");
  integrations = listed.status === 200 ? listed.data : [];
  renderIntegrations();
  // An admin sees their own company only: a company id in the address bar never changes it.
  const preselected = returned && returned.companyId;
  returned = null;
  if (!operator) {
    await openCompany(session.company_id);
    return;
  }
  const companies = loadCompanies();
  if (preselected) {
    $("company-input").value = preselected;
    await openCompany(preselected);
  } else {
    $("company-input").focus();
  }
  await companies;
}

// -- an operator's company picker -----------------------------------------------------------------
async function loadCompanies() {
  const answer = await api("GET", "/companies");
  if (answer.status !== 200) return;
  const options = answer.data.map((status) => {
    const vendor = status.provider_label || status.provider || "no integration";
    return el("option", { value: status.company_id, label: `${vendor}: ${BADGES[status.status] || status.status}` });
  });
  $("company-options").replaceChildren(...options);
}

async function pickCompany(event) {
  event.preventDefault();
  const wanted = $("company-input").value.trim();
  if (!wanted) {
    $("company-input").focus();
    return;
  }
  await openCompany(wanted);
}

async function openCompany(id) {
  company = id;
  stopPolling();
  lastStatus = null;
  $("company-name").textContent = company;
  $("sync-message").textContent = "";
  $("connect-form").hidden = true;
  $("connect-error").hidden = true;
  $("status-panel").hidden = true;
  $("chooser").hidden = true;
  $("propays").tBodies[0].replaceChildren();
  $("propays").dataset.rows = "0";
  $("propays-empty").hidden = false;
  $("company-view").hidden = false;
  await refresh();
}

// -- the integration list and the connect form -------------------------------------------------
function renderIntegrations() {
  const wanted = $("search").value.trim().toLowerCase();
  const list = $("integrations");
  list.replaceChildren();
  for (const integration of integrations) {
    const name = integration.label.toLowerCase();
    if (wanted && !name.includes(wanted) && !integration.provider.toLowerCase().includes(wanted)) continue;
    const button = el("button", { type: "button", class: "integration", "data-provider": integration.provider }, integration.label);
    button.addEventListener("click", () => openForm(integration));
    const item = el("li");
    item.append(button);
    list.append(item);
  }
  if (!list.children.length) list.append(el("li", { class: "hint" }, "No integration matches."));
}

function field(labelText, input, hint) {
  const wrapper = el("div", { class: "field" });
  wrapper.append(el("label", { for: input.id }, labelText), input);
  if (hint) wrapper.append(el("p", { class: "hint", id: `${input.id}-hint` }, hint));
  if (hint) input.setAttribute("aria-describedby", `${input.id}-hint`);
  return wrapper;
}

function openForm(integration) {
  const form = $("connect-form");
  form.dataset.provider = integration.provider;
  $("connect-title").textContent = `Connect ${integration.label}`;
  $("connect-error").hidden = true;
  const fields = $("connect-fields");
  fields.replaceChildren();
  const oauth = integration.connects_with === "oauth";
  for (const spec of integration.fields) {
    const input = el("input", {
      id: `credential-${spec.name}`,
      name: spec.name,
      type: spec.secret ? "password" : "text",
      autocomplete: spec.secret ? "new-password" : "off",
      "data-credential": spec.name,
    });
    if (spec.required) input.required = true;
    fields.append(field(labelOf(spec), input, spec.description));
  }
  const pullDate = el("input", { id: "pull-date", name: "attendance_pull_date", type: "date", max: daysAgo(0) });
  pullDate.value = daysAgo(TWO_WEEKS_DAYS);
  fields.append(field("Attendance pull date", pullDate, "Attendance is pulled from this date: two weeks recommended."));
  if (integration.timezone_required) {
    const zone = el("input", { id: "timezone", name: "timezone", type: "text", required: "" });
    zone.value = Intl.DateTimeFormat().resolvedOptions().timeZone || "";
    fields.append(field("Time zone", zone, `${integration.label} sends times in UTC: the company's time zone, e.g. America/Denver.`));
  }
  $("connect-submit").textContent = oauth ? `Connect with ${integration.label}` : "Connect";
  form.hidden = false;
  const first = fields.querySelector("input");
  if (first) first.focus();
}

function labelOf(spec) {
  const words = spec.name.replace(/_/g, " ");
  return words.charAt(0).toUpperCase() + words.slice(1);
}

async function connect(event) {
  event.preventDefault();
  const form = $("connect-form");
  const provider = form.dataset.provider;
  const integration = integrations.find((i) => i.provider === provider);
  const pullDate = $("pull-date").value || null;
  if (integration.connects_with === "oauth") {
    const query = new URLSearchParams({ company_id: company, csrf_token: session.csrf_token });
    if (pullDate) query.set("attendance_pull_date", pullDate);
    window.location.assign(`/integrations/${encodeURIComponent(provider)}/authorize?${query}`);
    return;
  }
  const credentials = {};
  for (const input of form.querySelectorAll("[data-credential]")) {
    if (input.value !== "") credentials[input.dataset.credential] = input.value;
  }
  const body = { provider, credentials, attendance_pull_date: pullDate };
  if (integration.timezone_required) body.settings = { timezone: $("timezone").value.trim() };
  $("connect-submit").disabled = true;
  $("connect-error").hidden = true;
  const asked = company;
  try {
    const answer = await api("PUT", `/companies/${encodeURIComponent(asked)}/integration`, body);
    if (asked !== company) return;
    if (answer.status === 201) {
      form.hidden = true;
      for (const input of form.querySelectorAll("input")) input.value = "";
      showStatus(answer.data);
      await refreshPropays();
    } else {
      $("connect-error").textContent = problems(answer.data);
      $("connect-error").hidden = false;
      if (answer.data && answer.data.status) showStatus(answer.data.status);
    }
  } finally {
    $("connect-submit").disabled = false;
  }
}

// -- status, the sync button and the ProPays -----------------------------------------------------
const BADGES = { pending: "Pending", connected: "Connected", failed: "Failed", disconnected: "Disconnected" };

function syncing(status) {
  return status.syncs.length > 0 && ["queued", "running"].includes(status.syncs[0].status);
}

function showStatus(status) {
  const before = lastStatus;
  lastStatus = status;
  $("status-panel").hidden = false;
  $("chooser").hidden = status.status !== "failed" && $("connect-form").hidden;
  $("status-vendor").textContent = status.provider_label || "";
  const badge = $("status-badge");
  badge.textContent = BADGES[status.status] || status.status;
  badge.className = `badge ${status.status}`;
  $("status-reason").textContent = status.reason;
  $("status-action").hidden = !status.action_message;
  $("status-action").textContent = status.action_message || "";
  const last = $("last-sync");
  last.textContent = `Last sync: ${when(status.last_sync_at)}`;
  last.dataset.at = status.last_sync_at || "";
  const busy = syncing(status);
  $("sync-now").classList.toggle("spinning", busy);
  $("sync-now").setAttribute("aria-busy", String(busy));
  if (busy) $("sync-message").textContent = "Syncing…";
  else if (before && syncing(before)) $("sync-message").textContent = status.syncs[0].status === "failed" ? `The sync failed: ${status.syncs[0].error}` : "Synced.";
  // A sync recorded before its ProPays are computed (the daemon's): keep asking until they are.
  startPolling(status.status === "pending" || busy || status.propays_updating ? POLL_MS : IDLE_POLL_MS);
  const moved = (key) => before && before[key] !== status[key];
  if (moved("last_sync_at") || moved("propays_as_of")) refreshPropays();
}

// The company's status as the service answered it; without an integration (never connected, or
// disconnected meanwhile, from the CLI say) the chooser instead.
function takeStatus(answer) {
  if (answer.status === 200) {
    showStatus(answer.data);
  } else if (answer.status === 404) {
    lastStatus = null;
    stopPolling();
    $("status-panel").hidden = true;
    $("chooser").hidden = false;
  }
}

async function refresh() {
  const asked = company;
  const answer = await api("GET", `/companies/${encodeURIComponent(asked)}/integration`);
  if (asked !== company) return; // another company was opened meanwhile
  takeStatus(answer);
  await refreshPropays();
}

// The cadence is kept on the status panel (data-poll-ms), where the browser tests read it.
function startPolling(every = POLL_MS) {
  if (pollTimer !== null && $("status-panel").dataset.pollMs === String(every)) return;
  stopPolling();
  pollTimer = window.setInterval(poll, every);
  $("status-panel").dataset.pollMs = String(every);
}

function stopPolling() {
  if (pollTimer !== null) window.clearInterval(pollTimer);
  pollTimer = null;
  $("status-panel").dataset.pollMs = "";
}

async function poll() {
  const asked = company;
  if (asked === null) return;
  const answer = await api("GET", `/companies/${encodeURIComponent(asked)}/integration`);
  if (asked === company) takeStatus(answer);
}

async function syncNow() {
  $("sync-message").textContent = "";
  const asked = company;
  const answer = await api("POST", `/companies/${encodeURIComponent(asked)}/syncs`);
  if (asked !== company) return;
  if (answer.status === 202) {
    $("sync-message").textContent = "Syncing…";
    await poll();
    startPolling();
  } else if (answer.status === 429) {
    $("sync-message").textContent = `Synced less than a minute ago: try again in ${answer.headers.get("Retry-After")} s.`;
  } else {
    $("sync-message").textContent = problems(answer.data);
  }
}

function hours(value) {
  return value === null || value === undefined ? "—" : value.toFixed(2);
}

function money(value) {
  return value === null || value === undefined ? "—" : value.toLocaleString(undefined, { style: "currency", currency: "USD" });
}

async function refreshPropays() {
  const asked = company;
  if (asked === null) return;
  const answer = await api("GET", `/companies/${encodeURIComponent(asked)}/propays`);
  if (answer.status !== 200 || asked !== company) return;
  const body = $("propays").tBodies[0];
  body.replaceChildren();
  for (const propay of answer.data) {
    const row = el("tr", { "data-propay-id": propay.propay_id });
    row.append(
      el("td", {}, propay.name),
      el("td", { class: "num" }, hours(propay.budget_hours)),
      el("td", { class: "num" }, hours(propay.actual_hours)),
      el("td", { class: "num" }, money(propay.bonus_pool)),
      el("td", { class: `pay ${propay.pay_state}` }, propay.pay_state),
    );
    body.append(row);
  }
  $("propays").dataset.rows = String(answer.data.length);
  $("propays-empty").hidden = answer.data.length > 0;
}

// -- wiring ---------------------------------------------------------------------------------------
document.addEventListener("DOMContentLoaded", async () => {
  returned = takeReturn();
  if (returned) showNotice(returned);
  $("login-form").addEventListener("submit", logIn);
  $("company-picker").addEventListener("submit", pickCompany);
  $("logout").addEventListener("click", logOut);
  $("search").addEventListener("input", renderIntegrations);
  $("connect-form").addEventListener("submit", connect);
  $("connect-cancel").addEventListener("click", () => {
    $("connect-form").hidden = true;
    if (lastStatus) $("chooser").hidden = true;
  });
  $("change-integration").addEventListener("click", () => {
    $("chooser").hidden = false;
    $("search").focus();
  });
  $("sync-now").addEventListener("click", syncNow);
  const current = await api("GET", "/session");
  if (current.status === 200) await start(current.data);
  else showLogin(null);
});
