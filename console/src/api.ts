// The staff API client. The session token lives in this module's memory only: never in
// localStorage, sessionStorage or a cookie; a reload signs out.

export type Role = "support" | "moderator" | "admin";

export interface Session {
  token: string;
  expires_at: string;
  staff: { id: string; role: Role };
}

export interface Page<T> {
  items: T[];
  next_cursor: string | null;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

let session: Session | null = null;
let onSignedOut: () => void = () => {};

export function current(): Session | null {
  return session;
}

export function whenSignedOut(handler: () => void): void {
  onSignedOut = handler;
}

async function call<T>(method: string, path: string, body?: unknown, anonymous = false): Promise<T> {
  const headers: Record<string, string> = {};
  if (session && !anonymous) headers.authorization = `Bearer ${session.token}`;
  if (body !== undefined) headers["content-type"] = "application/json";
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "omit",
    cache: "no-store",
  });
  if (response.status === 204) return undefined as T;
  const text = await response.text();
  let json: any = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    // not JSON: reported below
  }
  if (!response.ok) {
    const code = json?.error?.code ?? "http_" + response.status;
    const message = json?.error?.message ?? response.statusText;
    if (response.status === 401 && session && !anonymous && !path.endsWith("/auth/wecom")) {
      session = null;
      onSignedOut();
    }
    throw new ApiError(response.status, code, message);
  }
  return json as T;
}

export const get = <T>(path: string) => call<T>("GET", path);
/** A public member route (`GET /v1/listings/{id}`): a staff token is not a member's, so none is sent. */
export const getPublic = <T>(path: string) => call<T>("GET", path, undefined, true);
export const post = <T>(path: string, body?: unknown) => call<T>("POST", path, body);

/** A query string from the parameters that are set. */
export function query(params: Record<string, string | null | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v) q.set(k, v);
  const s = q.toString();
  return s ? `?${s}` : "";
}

export async function signIn(code: string): Promise<Session> {
  session = await post<Session>("/admin/v1/auth/wecom", { code });
  return session;
}

export async function signOut(): Promise<void> {
  try {
    if (session) await post("/admin/v1/auth/logout");
  } finally {
    session = null;
    onSignedOut();
  }
}

// What each role may do: the README's roles table (the server checks it again on every call;
// this only decides what the console offers).
export type Action =
  | "tickets.read"
  | "tickets.answer"
  | "members.read"
  | "members.delete"
  | "listings.moderate"
  | "members.suspend"
  | "reviews.hide"
  | "orders.decide"
  | "audit.read"
  | "review_queue";

const GRANTS: Record<Role, Action[]> = {
  support: ["tickets.read", "tickets.answer", "members.read", "members.delete", "orders.decide"],
  moderator: ["tickets.read", "members.read", "listings.moderate", "members.suspend", "reviews.hide", "review_queue"],
  admin: [
    "tickets.read",
    "tickets.answer",
    "members.read",
    "members.delete",
    "listings.moderate",
    "members.suspend",
    "reviews.hide",
    "orders.decide",
    "audit.read",
    "review_queue",
  ],
};

export function may(action: Action): boolean {
  return session !== null && GRANTS[session.staff.role].includes(action);
}
