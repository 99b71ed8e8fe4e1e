export { esc, formatStat, MISSING } from "./format.js";
export { type ReportOptions, renderReport } from "./html.js";
export { writeReport } from "./write.js";
