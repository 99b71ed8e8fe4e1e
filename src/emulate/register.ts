/**
 * `node --import synlimit/register app.js` — the only module with import-time
 * side effects: it installs the limiter configured by SYNLIMIT_* variables.
 * A bad variable ends the process with one line on stderr and exit code 2,
 * before the application runs.
 */
import { isSynlimitError } from "../errors.js";
import { Recorder } from "../record/recorder.js";
import { optionsFromEnv } from "./env.js";
import { install } from "./install.js";
import { forgetRecording, recordingFromEnv } from "./record-env.js";

try {
  const recording = recordingFromEnv(process.env);
  if (recording) {
    new Recorder({
      file: recording.file,
      gate: recording.gateName,
      roles: recording.roles,
    });
    forgetRecording(process.env);
    install(recording.emulation);
  } else {
    install(optionsFromEnv(process.env));
  }
} catch (error) {
  if (!isSynlimitError(error)) throw error;
  process.stderr.write(`synlimit: ${error.message}\n`);
  process.exit(2);
}
