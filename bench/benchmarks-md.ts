// BENCHMARKS.md, which every benchmark writes its results into: one `## Title` section each,
// replaced in place when the file has it, appended otherwise. The section's text before its first `### `
// and every `### ` subsection the new text has are replaced, wherever they stood in the section; the
// subsections it does not have (written by hand: a change's before/after figures, or by another bench)
// stay, in their order, after the regenerated part. (It used to stop at the first foreign subsection, so
// a generated subsection after a hand-written one was written a second time instead of replaced.)
import { existsSync, readFileSync, writeFileSync } from 'node:fs'

export const BENCHMARKS_FILE = new URL('../BENCHMARKS.md', import.meta.url).pathname

/** Writes each section (Markdown whose first line is its `## Title`) into `file`. */
export function writeBenchmarkSections (sections: string[], file = BENCHMARKS_FILE): void {
  let text = existsSync(file) ? readFileSync(file, 'utf8') : '# Benchmarks\n'
  for (const section of sections) {
    const title = section.split('\n')[0].trimEnd()
    const lines = text.split('\n')
    const start = lines.findIndex(l => l.trimEnd() === title)
    if (start < 0) {
      text = text.replace(/\n*$/, '\n\n') + section
      continue
    }
    const own = new Set(section.split('\n').filter(l => /^### /.test(l)).map(l => l.trimEnd()))
    let end = lines.findIndex((l, i) => i > start && /^## /.test(l))
    if (end < 0) end = lines.length
    // The subsections of the old section that the new text does not have, each up to the next `### `.
    const kept: string[] = []
    let keeping = false
    for (const l of lines.slice(start + 1, end)) {
      if (/^### /.test(l)) keeping = !own.has(l.trimEnd())
      if (keeping) kept.push(l)
    }
    const after = [kept.join('\n').replace(/\n+$/, ''), lines.slice(end).join('\n')].filter(x => x !== '').join('\n\n')
    text = [...lines.slice(0, start), section.replace(/\n+$/, ''), ...(after === '' ? [''] : ['', after])].join('\n')
  }
  writeFileSync(file, text.replace(/\n*$/, '\n'))
}
