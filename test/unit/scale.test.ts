import { expect } from 'chai';
import { formatGrade, gradeOf } from '../../src/grading/scale.js';

describe('grade scale', () => {
  it('is the score fraction of the assignment points, rounded as sent to the platform', () => {
    expect(gradeOf(2 / 3, 3)).to.deep.equal({ given: 2, maximum: 3 });
    expect(gradeOf(1 / 3, 1)).to.deep.equal({ given: 0.333333, maximum: 1 });
    expect(gradeOf(0, 5)).to.deep.equal({ given: 0, maximum: 5 });
  });

  it('is written as points out of the maximum with a percentage', () => {
    expect(formatGrade(gradeOf(1, 3))).to.equal('3 / 3 points (100%)');
    expect(formatGrade(gradeOf(5 / 6, 3))).to.equal('2.5 / 3 points (83%)');
    expect(formatGrade(gradeOf(1 / 3, 1))).to.equal('0.33 / 1 point (33%)');
  });
});
