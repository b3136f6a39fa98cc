/** An examining thread of ExaminerPool: examines each notebook it is sent and answers. */
import { parentPort } from 'node:worker_threads';
import { examine, type Examined, type ExamineReply, type ExamineRequest } from './examine.js';

parentPort!.on('message', (req: ExamineRequest) => {
  const bytes = Buffer.from(req.bytes.buffer, req.bytes.byteOffset, req.bytes.byteLength);
  let examined: Examined;
  try {
    examined = examine({ kind: req.kind, bytes });
  } catch (err) {
    // e.g. a notebook nested too deeply to serialise again
    examined = { ok: false, kind: 'unprocessable', message: `Gofer cannot read this notebook (${(err as Error).message}).` };
  }
  parentPort!.postMessage({ id: req.id, examined } satisfies ExamineReply);
});
