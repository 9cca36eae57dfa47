// lexiedge's JavaScript runtime for classifier artifacts (ES module, no bundler):
//
//   import * as ort from 'onnxruntime-web';          // or 'onnxruntime-node' in Node
//   import { loadClassifier } from 'lexiedge-runtime-js';
//   const emotion = await loadClassifier('/web/models/emotion', { ort });   // checks every sha256 first
//   const result = await emotion.predictAudio([audioBuffer.getChannelData(0)], audioBuffer.sampleRate);
//   console.log(result.label, result.probabilities);
//   const me = await emotion.calibrate(myClips);          // a model normalised by its speaker: a profile
//   await emotion.predictAudio(channels, rate, { speaker: me });   // result.normalization: 'speaker'
//
// Everything about the model (input names, rates, clip length, frame size, ranges, limits, labels) is
// read from the artifact's manifest.json (preprocessing.feeds); see README.md.

export { Classifier, loadClassifier } from './classifier.js';
export { SpeakerProfile } from './enrollment.js';
export {
  ArtifactError, ArtifactIntegrityError, EnrollmentError, InferenceError, InputDtypeError, InputShapeError,
  InputValueError, LexiedgeError, ManifestError, NoEnrollmentError, RuntimeInputError, SpeakerProfileError,
  TooFewClipsError, UnverifiedArtifactError,
} from './errors.js';
export { centreFit, checkFrames, checkWaveform, dtypeOf, prepareAudio } from './inputs.js';
export { checkMemberName, classifierSpec, decodeManifest, invalidUtf8At, parseManifest } from './manifest.js';
export { resample } from './fft.js';
export { sha256Hex, sha256HexPlain, sha256Implementation } from './sha256.js';
export { decodeWav, wavInfo } from './wav.js';
