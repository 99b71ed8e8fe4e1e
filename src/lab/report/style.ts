/** The page's whole stylesheet: inline, system fonts only, so the file works offline. */
export const css = `
:root { color-scheme: light; --fg: #1a1a1a; --muted: #555; --line: #ddd; }
* { box-sizing: border-box; }
body { margin: 0 auto; max-width: 1000px; padding: 1.5rem; color: var(--fg);
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
h1 { font-size: 1.6rem; margin: 0 0 .25rem; }
h2 { font-size: 1.3rem; margin: 2.5rem 0 .5rem; border-bottom: 1px solid var(--line); }
h3 { font-size: 1.05rem; margin: 1.5rem 0 .25rem; }
p, li { max-width: 75ch; }
.muted, figcaption, caption { color: var(--muted); }
nav ul { display: flex; flex-wrap: wrap; gap: .25rem 1rem; padding: 0; list-style: none; }
table { border-collapse: collapse; margin: 1rem 0; font-size: .9rem; }
caption { text-align: left; padding-bottom: .25rem; }
th, td { padding: .2rem .6rem; border-bottom: 1px solid var(--line); text-align: left; }
tr.group > * { border-top: 2px solid #bbb; }
.num { text-align: right; font-variant-numeric: tabular-nums; }
table.meta th { font-weight: 600; white-space: nowrap; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 0 1rem; margin: .5rem 0; }
dl.facts dt { color: var(--muted); } dl.facts dd { margin: 0; }
figure { margin: 1rem 0 2rem; }
figure svg { max-width: 100%; height: auto; }
figcaption { font-size: .85rem; margin-top: .25rem; max-width: 90ch; }
.legend { display: flex; flex-wrap: wrap; gap: .2rem 1rem; font-size: .8rem; margin: .25rem 0; }
.swatch { display: inline-block; width: .9em; height: .9em; margin-right: .3em;
  vertical-align: -.1em; border: 1px solid rgba(0,0,0,.2); }
.swatch.dot { border-radius: 50%; }
.wide { max-width: 100%; overflow-x: auto; }
ul.checks { list-style: none; padding: 0; }
ul.checks li { margin: .15rem 0; }
ul.checks li.fail { color: #b00; font-weight: 600; }
tr.failing td[data-stat="errors"], tr.failing td[data-stat="errorRate"] { color: #b00; font-weight: 600; }
figure .panel + .panel { margin-top: .25rem; }
figure svg { display: block; }
a, li, p, td, dd { overflow-wrap: anywhere; }
.chart-narrow { display: none; }
@media (max-width: 600px) { .chart-wide { display: none; } .chart-narrow { display: block; } body { padding: .75rem; font-size: 14px; } th, td { padding: .15rem .35rem; } }
footer { margin-top: 3rem; font-size: .85rem; color: var(--muted); }
`;
