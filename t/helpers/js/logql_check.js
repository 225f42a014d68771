// Parses LogQL queries with Grafana's own LogQL grammar (@grafana/lezer-logql,
// the parser Grafana's query editor uses), independent of this project.
// stdin: a JSON array of queries; stdout: a JSON array, per query null when
// it parses, or the offset and text where the parser found an error.
'use strict';
const { parser } = require('@grafana/lezer-logql');

let input = '';
process.stdin.on('data', (c) => { input += c; });
process.stdin.on('end', () => {
  const out = JSON.parse(input).map((q) => {
    let bad = null;
    parser.parse(q).iterate({
      enter(node) {
        if (bad === null && node.type.isError) {
          bad = { at: node.from, near: q.slice(node.from, node.from + 20) };
        }
      },
    });
    return bad;
  });
  process.stdout.write(JSON.stringify(out));
});
