// Who is signed in, and their role in a project. Everything here is tied to the key it was
// read with: signing in with another key (even without signing out) forgets the old user,
// their roles, and re-renders the header.

import { api, getKey, setKey } from "./api.js";

let me = null; // { key, user }
const roles = new Map(); // project id -> role, for `me`

/** The signed-in user (GET /users/me), cached for the current key. */
export async function currentUser() {
  const key = getKey();
  if (!me || me.key !== key) {
    roles.clear();
    me = { key, user: await api("/users/me") };
  }
  return me.user;
}

/** The user's role in a project: admin (platform admins too), reviewer, labeler, viewer. */
export async function projectRole(projectId) {
  const user = await currentUser();
  if (user.is_admin) return "admin";
  if (!roles.has(projectId)) {
    const members = await api(`/projects/${projectId}/members`);
    roles.set(projectId, members.find((m) => m.user_id === user.id)?.role || null);
  }
  return roles.get(projectId);
}

const RANK = { viewer: 0, labeler: 1, reviewer: 2, admin: 3 };
/** Whether `role` may do what `needed` may (admin > reviewer > labeler > viewer). */
export function can(role, needed) {
  return role in RANK && RANK[role] >= RANK[needed];
}

/** Sign in with `key`: the old user, their roles and header go at once. */
export async function signIn(key) {
  const previous = getKey();
  setKey(key);
  me = null;
  roles.clear();
  try {
    await currentUser();
  } catch (err) {
    setKey(previous);
    throw err;
  }
  window.dispatchEvent(new Event("earthplat:identity"));
}

export function signOut() {
  setKey(null);
  me = null;
  roles.clear();
  window.dispatchEvent(new Event("earthplat:identity"));
  location.hash = "#/signin";
}
