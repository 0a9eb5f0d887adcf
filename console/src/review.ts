// The staff review queues (media, texts): one entry per queue, each a screen in the console's
// navigation for the roles that moderate. Empty until the staff moderation routes
// (`GET /admin/v1/moderation/media` and `/texts`, `POST …/{id}/decision {decision, reason}`) are
// on main; a queue is then one entry here, built with the helpers main.ts hands over.

import type { Page } from "./api";

export interface ReviewHelpers {
  h: typeof import("./dom").h;
  form: (attrs: Record<string, string>, fields: (Node | string)[], action: (data: FormData) => Promise<void>) => HTMLFormElement;
  pagedTable: <T>(
    into: HTMLElement,
    fetchPage: (cursor: string | null) => Promise<Page<T>>,
    head: string[],
    row: (item: T) => HTMLTableRowElement,
    empty?: string,
  ) => Promise<void>;
  reasonField: (name?: string, label?: string) => HTMLElement;
  route: () => Promise<void>;
}

export interface ReviewQueue {
  /** `/review/media`, `/review/texts` */
  path: string;
  title: string;
  render: (main: HTMLElement, helpers: ReviewHelpers) => Promise<void> | void;
}

export const reviewQueues: ReviewQueue[] = [];
