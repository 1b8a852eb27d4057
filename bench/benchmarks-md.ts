// BENCHMARKS.md, which every benchmark writes its results into: one `## Title` section each,
// replaced in place when the file has it, appended otherwise. What is replaced ends at the next `## `,
// or before at the first `### ` subsection the new text does not have: subsections written by hand
// (a change's before/after figures) or by another bench stay, after the regenerated part.
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
    let end = lines.findIndex((l, i) => i > start && (/^## /.test(l) || (/^### /.test(l) && !own.has(l.trimEnd()))))
    if (end < 0) end = lines.length
    const after = lines.slice(end).join('\n')
    text = [...lines.slice(0, start), section.replace(/\n+$/, ''), ...(after === '' ? [''] : ['', after])].join('\n')
  }
  writeFileSync(file, text.replace(/\n*$/, '\n'))
}
