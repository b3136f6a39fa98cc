import { expect } from 'chai';
import { allAssignments, assignmentKey, courseForContext, findAssignment, findCourse, resolveAssignment, resolveTarget } from '../../src/config/courses.js';
import { courseSchema } from '../../src/config/schema.js';
import { UnprocessableError } from '../../src/lib/errors.js';

const courses = [
  courseSchema.parse({
    id: '8x',
    assignments: [
      { id: 'lab01', aliases: ['lab1', 'Lab 1'], section: 'default-section', tests: 't' },
      { id: 'lab02', tests: 't' },
    ],
  }),
  courseSchema.parse({ id: 'data8', contexts: ['course-v1:B+data8+2026'], assignments: [{ id: 'hw01', tests: 't' }] }),
];
const config = { courses, defaultCourse: '8x' };

describe('the course/assignment lookup (config/courses)', () => {
  it('keys an assignment so that no two pairs collide', () => {
    expect(assignmentKey('a', 'b')).to.equal('a\u0000b');
    expect(assignmentKey('a\nb', 'c')).not.to.equal(assignmentKey('a', 'b\nc'));
  });

  it('finds courses and assignments by id only (aliases are for notebooks and launches)', () => {
    expect(findCourse(config, 'data8')?.id).to.equal('data8');
    expect(findCourse(config, 'nope')).to.equal(undefined);
    expect(findAssignment(config, '8x', 'lab01')?.assignment.id).to.equal('lab01');
    expect(findAssignment(config, '8x', 'lab1')).to.equal(undefined);
    expect(findAssignment(config, 'data8', 'lab01')).to.equal(undefined);
    expect(allAssignments(config).map((x) => `${x.course.id}/${x.assignment.id}`)).to.deep.equal(['8x/lab01', '8x/lab02', 'data8/hw01']);
  });

  it('finds the course of an LTI context, and none for no context', () => {
    expect(courseForContext(config, 'course-v1:B+data8+2026')?.id).to.equal('data8');
    expect(courseForContext(config, 'course-v1:other')).to.equal(undefined);
    expect(courseForContext(config, null)).to.equal(undefined);
  });

  describe("resolveAssignment (a notebook's metadata)", () => {
    it('reads gofer metadata, with an alias, the default course and the configured section', () => {
      const r = resolveAssignment(config, { lab: 'lab1' });
      expect([r.course.id, r.assignment.id, r.section]).to.deep.equal(['8x', 'lab01', 'default-section']);
      const s = resolveAssignment(config, { assignment: ' Lab 1 ', section: '3' });
      expect([s.assignment.id, s.section]).to.deep.equal(['lab01', '3']);
    });

    it('reads otter-service metadata, and a number as an assignment name', () => {
      const r = resolveAssignment(config, { otter_service: { course: 'data8', assignment: 'hw01', section: 'b' }, lab: 'lab01' });
      expect([r.course.id, r.assignment.id, r.section]).to.deep.equal(['data8', 'hw01', 'b']);
      const one = resolveAssignment({ courses: [courseSchema.parse({ id: 'c', assignments: [{ id: '7', tests: 't' }] })] }, { assignment: 7 });
      expect(one.assignment.id).to.equal('7');
    });

    const refused: Array<[string, Record<string, unknown>, RegExp, typeof config | { courses: typeof courses }]> = [
      ['no assignment', {}, /does not say which assignment it is/, config],
      ['an otter notebook without an assignment (lab is not read there)', { otter_service: { course: '8x' }, lab: 'lab01' }, /does not say which assignment/, config],
      ['no course and no default among several', { lab: 'lab01' }, /^This notebook does not say which course it is for\. Submit the notebook you were given/, { courses }],
      ['an unknown course', { course: 'x'.repeat(100), lab: 'lab01' }, /for the course "x{80}…", which is not graded here/, config],
      ['an unknown assignment', { lab: 'lab99' }, /^This course has no assignment "lab99"/, config],
      ['a list where text belongs', { assignment: ['lab01'] }, /^This notebook's assignment details are damaged\./, config],
      ['an object as the course', { otter_service: { course: {}, assignment: 'hw01' } }, /^This notebook's assignment details are damaged\./, config],
    ];
    for (const [what, metadata, message, cfg] of refused) {
      it(`refuses ${what}`, () => {
        expect(() => resolveAssignment(cfg, metadata)).to.throw(UnprocessableError, message);
      });
    }
  });

  it("resolveTarget takes a launch's course and assignment ids, and says when they are gone", () => {
    const r = resolveTarget(config, { course: '8x', assignment: 'lab02' }, { section: 's' });
    expect([r.course.id, r.assignment.id, r.section]).to.deep.equal(['8x', 'lab02', 's']);
    expect(resolveTarget(config, { course: '8x', assignment: 'lab01' }, {}).section).to.equal('default-section');
    expect(() => resolveTarget(config, { course: '8x', assignment: 'lab1' }, {})).to.throw(UnprocessableError, /The assignment "lab1" is not open for submissions here any more/);
  });

  it("names the damaged metadata field for staff in the error's cause, never in the learner's message", () => {
    const err = (() => {
      try {
        resolveAssignment(config, { otter_service: { course: {}, assignment: 'hw01' } });
      } catch (e) {
        return e as Error;
      }
      return undefined;
    })();
    expect(err?.message).to.not.include('metadata');
    expect((err?.cause as Error | undefined)?.message).to.equal('metadata.otter_service.course is not text');
  });
});
