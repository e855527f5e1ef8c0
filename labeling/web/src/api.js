// The API client: every call carries the stored key as `Authorization: Bearer`, and every
// error becomes an ApiError holding the API's {detail, fix}.

const KEY = "earthplat.key";
export const API = "/api/v1";

export function getKey() {
  return localStorage.getItem(KEY);
}

export function setKey(key) {
  if (key) localStorage.setItem(KEY, key);
  else localStorage.removeItem(KEY);
}

export class ApiError extends Error {
  constructor(status, detail, fix) {
    super(formatDetail(detail));
    this.status = status;
    this.detail = this.message;
    this.fix = fix || "";
  }
}

function formatDetail(detail) {
  if (Array.isArray(detail)) {
    // validation errors: [{loc, msg}]
    return detail.map((e) => `${(e.loc || []).join(".")}: ${e.msg}`).join("; ");
  }
  return typeof detail === "string" ? detail : JSON.stringify(detail);
}

export function authHeaders(extra = {}) {
  const key = getKey();
  return key ? { ...extra, Authorization: `Bearer ${key}` } : extra;
}

/** fetch `path` (under /api/v1 unless absolute); JSON in, JSON out; null for 204. */
export async function api(path, options = {}) {
  return (await apiWithHeaders(path, options)).data;
}

/** As `api`, also returning the response headers (e.g. X-Total-Count of a listing). */
export async function apiWithHeaders(path, { method = "GET", body, headers = {} } = {}) {
  const init = { method, headers: authHeaders(headers) };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers["Content-Type"] = "application/json";
  }
  let r;
  try {
    r = await fetch(path.startsWith("/") && !path.startsWith(API) ? API + path : path, init);
  } catch (e) {
    throw new ApiError(0, `the API cannot be reached (${e.message})`, "check that it is running");
  }
  if (r.status === 204) return { data: null, headers: r.headers };
  const text = await r.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = { detail: text || r.statusText };
  }
  if (!r.ok) throw new ApiError(r.status, data?.detail ?? r.statusText, data?.fix);
  return { data, headers: r.headers };
}

/** Download an API file (artefacts need the Authorization header, which a link cannot send). */
export async function download(url, name) {
  const r = await fetch(url, { headers: authHeaders() });
  if (!r.ok) {
    let data = {};
    try {
      data = await r.json();
    } catch {
      /* not JSON */
    }
    throw new ApiError(r.status, data.detail ?? r.statusText, data.fix);
  }
  const blob = await r.blob();
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
}
