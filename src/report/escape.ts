const entities: Record<string, string> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&#39;",
};

/** Escapes text for element content and double- or single-quoted attributes. */
export function esc(text: unknown): string {
  return String(text).replace(/[&<>"']/g, (c) => entities[c] ?? c);
}
