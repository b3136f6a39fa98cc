/**
 * One scale for a grade everywhere (pages, CSV, CLI, REST API, the submit button, edX): points out
 * of the assignment's configured `points`. A result's `score` is the fraction of its tests' points
 * earned, in [0, 1]; the grade is that fraction of the assignment's points, rounded to 6 decimals,
 * exactly as it is sent to the platform (scoreGiven / scoreMaximum).
 */
export interface Grade {
  /** Points earned, as sent to the platform. */
  given: number;
  /** The assignment's points. */
  maximum: number;
}

export function round6(x: number): number {
  return Math.round(x * 1e6) / 1e6;
}

export function gradeOf(score: number, points: number): Grade {
  return { given: round6(score * points), maximum: points };
}

function plain(x: number): string {
  return String(round6(x) === Math.round(x) ? Math.round(x) : Number(x.toFixed(2)));
}

/** "2.5 / 3 points (83%)": how a grade is written for people. */
export function formatGrade(grade: Grade): string {
  const pct = grade.maximum > 0 ? Math.round((grade.given / grade.maximum) * 100) : 0;
  return `${plain(grade.given)} / ${plain(grade.maximum)} ${grade.maximum === 1 ? 'point' : 'points'} (${pct}%)`;
}

/** A grade as the submit button, the REST API and other clients show it: points out of the assignment's points. */
export interface GradeView extends Grade {
  /** "2 / 3 points (67%)" */
  text: string;
}

/** The grade of a score (a fraction of the tests' points), on the assignment's points, with its text; null without a score. */
export function gradeView(score: number | null, points: number): GradeView | null {
  if (score === null) return null;
  const g = gradeOf(score, points);
  return { ...g, text: formatGrade(g) };
}
