import type { GradingResult } from './result.js';
import { formatGrade, gradeOf } from './scale.js';

/** A readable table of one grading result, for a terminal; the grade is out of `points` (the assignment's). */
export function formatResult(result: GradingResult, points = 1): string {
  const lines: string[] = [];
  if (result.tests.length) {
    const width = Math.max(4, ...result.tests.map((t) => t.name.length));
    lines.push(`${'test'.padEnd(width)}  ${'points'.padStart(9)}  result`);
    for (const t of result.tests) {
      const pts = `${num(t.points)}/${num(t.maxPoints)}`.padStart(9);
      lines.push(`${t.name.padEnd(width)}  ${pts}  ${t.passed ? 'passed' : 'failed'}${t.hidden ? ' (hidden)' : ''}`);
      if (t.message) lines.push(...t.message.split('\n').map((l) => `${' '.repeat(width + 2)}| ${l}`));
    }
    lines.push('');
  }
  const score = result.status === 'graded' ? `${num(result.points)}/${num(result.maxPoints)} (${(result.score * 100).toFixed(1)}%)` : 'none';
  lines.push(`status: ${result.status}   score: ${score}   time: ${(result.durationMs / 1000).toFixed(1)} s`);
  if (result.status === 'graded') lines.push(`grade: ${formatGrade(gradeOf(result.score, points))}`);
  if (result.message) lines.push(result.message);
  return lines.join('\n');
}

function num(x: number): string {
  return Number.isInteger(x) ? String(x) : x.toFixed(2);
}
