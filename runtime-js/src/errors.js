// What the runtime throws: the same families, names and messages as the Python runtime's
// lexiedge_runtime/errors.py. Every message is one line saying what was given and what was expected.

export class LexiedgeError extends Error {
  constructor(message) {
    super(message);
    this.name = new.target.name;
  }
}

/** The artifact cannot be loaded: no manifest, a bad manifest value, a task this runtime does not run. */
export class ArtifactError extends LexiedgeError {}

/** A manifest value of the wrong type or range, or a path that would leave the artifact. */
export class ManifestError extends ArtifactError {
  constructor(where, key, problem) {
    super(`${where}: manifest.json: ${key}: ${problem}`);
    this.key = key;
  }
}

/** Files missing or changed since export: their sha256 no longer matches manifest.json. */
export class ArtifactIntegrityError extends ArtifactError {
  constructor(artifact, problems) {
    super(`${artifact}: refusing to load an artifact whose files do not match manifest.json: ` +
      `${problems.join('; ')} (re-export it, or copy the artifact again)`);
    this.artifact = artifact;
    this.problems = [...problems];
  }
}

/** An artifact whose export verification failed or was never recorded. */
export class UnverifiedArtifactError extends ArtifactError {}

/** Input one call cannot run on; the runtime and the loaded model are unharmed. */
export class RuntimeInputError extends LexiedgeError {}
export class InputDtypeError extends RuntimeInputError {}
export class InputShapeError extends RuntimeInputError {}
export class InputValueError extends RuntimeInputError {}
/** ONNX Runtime refused input that passed the checks; names the shapes it was given. */
export class InferenceError extends RuntimeInputError {}
/** Speaker enrollment refused: a model that takes no speaker profile, too few clips, a bad profile. */
export class EnrollmentError extends RuntimeInputError {}
export class NoEnrollmentError extends EnrollmentError {}
export class TooFewClipsError extends EnrollmentError {}
export class SpeakerProfileError extends EnrollmentError {}
