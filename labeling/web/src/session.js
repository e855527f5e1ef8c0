// Who is signed in, and their role in a project.

import { api, setKey } from "./api.js";

let me = null;
/** The signed-in user (GET /users/me), cached until sign-out. */
export async function currentUser() {
  if (!me) me = await api("/users/me");
  return me;
}

/** The user's role in a project: admin (platform admins too), reviewer, labeler, viewer. */
export async function projectRole(projectId) {
  const user = await currentUser();
  if (user.is_admin) return "admin";
  const members = await api(`/projects/${projectId}/members`);
  return members.find((m) => m.user_id === user.id)?.role || null;
}

export function signOut() {
  setKey(null);
  me = null;
  location.hash = "#/signin";
}

