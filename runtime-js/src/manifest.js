// manifest.json as the runtime trusts it: the checks of lexiedge_runtime/manifest.py and artifact.py
// that matter before a session is created, and the input contract read from preprocessing.feeds.
// Everything the model needs is read from the manifest; nothing here restates a model fact.

import { ArtifactError, ManifestError, UnverifiedArtifactError } from './errors.js';
import { FEEDS_VERSION, MANIFEST, MANIFEST_FORMAT, SUPPORTED_FORMAT_VERSIONS, TASKS } from './manifest.schema.js';
import { schemaProblem } from './schema.js';

export { FEEDS_VERSION, MANIFEST, MANIFEST_FORMAT, SUPPORTED_FORMAT_VERSIONS };
// the one task this runtime runs: the classifying one of the task specs (manifest.schema.js is generated)
export const TASK = Object.keys(TASKS).find((name) => !TASKS[name].generates);
export const MAX_MANIFEST_BYTES = 16 * 2 ** 20; // artifact.py's: a manifest is a few KB
const SHA256 = /^[0-9a-f]{64}$/;

/** ``name`` if it is a relative, normalised POSIX path inside the artifact; else a ManifestError. */
export function checkMemberName(name, where, key) {
  if (typeof name !== 'string' || !name) {
    throw new ManifestError(where, key, `expected a relative file name inside the artifact, got ${JSON.stringify(name)}`);
  }
  if (name.includes('\\') || name.includes('\0')) {
    throw new ManifestError(where, key, `'${name}' holds a backslash or NUL; expected a '/'-separated relative path`);
  }
  if (name.startsWith('/') || /^[A-Za-z]:/.test(name)) {
    throw new ManifestError(where, key, `'${name}' is an absolute path; an artifact names only files inside itself`);
  }
  if (name.split('/').some((part) => part === '' || part === '.' || part === '..')) {
    throw new ManifestError(where, key, `'${name}' is not a normalised relative path (no '..', '.' or empty parts): ` +
      'an artifact names only files inside itself');
  }
  return name;
}

/** Parse and check a manifest's text; returns the manifest object. */
export function parseManifest(text, where) {
  let manifest;
  try {
    manifest = JSON.parse(text);
  } catch (error) {
    throw new ArtifactError(`${where}/${MANIFEST}: unreadable manifest (${error.message})`);
  }
  if (!isObject(manifest) || manifest.format !== MANIFEST_FORMAT) {
    throw new ArtifactError(`${where}/${MANIFEST}: not a lexiedge manifest (expected "format": "${MANIFEST_FORMAT}")`);
  }
  if (!SUPPORTED_FORMAT_VERSIONS.includes(manifest.format_version)) {
    throw new ArtifactError(`${where}/${MANIFEST}: manifest format_version ${JSON.stringify(manifest.format_version)}; ` +
      `this runtime reads [${SUPPORTED_FORMAT_VERSIONS.join(', ')}]`);
  }
  const files = manifest.files;
  if (!isObject(files) || Object.keys(files).length === 0) {
    throw new ArtifactError(`${where}: the manifest lists no files with their sha256; refusing an unverifiable artifact`);
  }
  for (const [name, entry] of Object.entries(files)) {
    checkMemberName(name, where, `files['${name}']`);
    if (name === MANIFEST) {
      throw new ManifestError(where, `files['${name}']`, 'the manifest cannot vouch for itself; remove the entry');
    }
    if (!isObject(entry) || typeof entry.sha256 !== 'string' || !SHA256.test(entry.sha256)) {
      throw new ManifestError(where, `files['${name}'].sha256`, 'expected 64 lowercase hex digits (the file\'s sha256)');
    }
  }
  if (manifest.task !== TASK) {
    throw new ArtifactError(`${where}: task ${JSON.stringify(manifest.task)}: this runtime runs ${TASK} artifacts only`);
  }
  const graph = (manifest.runtime || {}).graph ?? 'model.onnx';
  checkMemberName(graph, where, 'runtime.graph');
  if (!(graph in files)) {
    throw new ManifestError(where, 'runtime.graph', `'${graph}' is not in the manifest's files (so its sha256 is unknown)`);
  }
  const labels = manifest.labels;
  if (!Array.isArray(labels) || !labels.length || !labels.every((x) => typeof x === 'string' && x)) {
    throw new ManifestError(where, 'labels', 'expected a non-empty list of label names');
  }
  if (new Set(labels).size !== labels.length) {
    throw new ManifestError(where, 'labels', 'a label is listed twice; each class needs its own name');
  }
  const problem = schemaProblem(manifest); // the rules the Python runtime checks too, from one declaration
  if (problem) throw new ManifestError(where, problem[0] || '(the manifest)', problem[1]);
  return manifest;
}

/** Refuse an artifact whose export verification failed or was never recorded (as the Python runtime does). */
export function checkVerified(manifest, where, allowUnverified) {
  const verification = manifest.verification || {};
  if (verification.passed === true) return;
  const failure = String(verification.failure || '').replace(/\n/g, ' ').slice(0, 300);
  const what = verification.passed === false ? `failed${failure ? ` (${failure})` : ''}` : 'was never recorded';
  if (!allowUnverified) {
    throw new UnverifiedArtifactError(`${where}: its export verification ${what}; refusing an unverified artifact ` +
      '(re-export it, or pass allow_unverified=True / --allow-unverified to load it anyway)');
  }
  console.warn(`${where}: loading an unverified artifact: its export verification ${what}; ` +
    'its outputs may differ from the trained model\'s');
}

/**
 * What the model reads, from preprocessing.feeds (and preprocessing.media for files): every name,
 * rate, length, size, range and limit the runtime uses.
 */
export function classifierSpec(manifest, where) {
  const preprocessing = manifest.preprocessing || {};
  const feeds = preprocessing.feeds;
  if (feeds == null) {
    throw new ArtifactError(`${where}: the manifest lacks preprocessing.feeds (the input contract a runtime outside ` +
      'Python reads); re-export the run with this lexiedge version');
  }
  const key = 'preprocessing.feeds';
  if (!isObject(feeds) || feeds.version !== FEEDS_VERSION) {
    throw new ManifestError(where, `${key}.version`, `expected ${FEEDS_VERSION}, got ${JSON.stringify(feeds?.version)}`);
  }
  const section = (name) => {
    if (!isObject(feeds[name])) throw new ManifestError(where, `${key}.${name}`, 'expected a mapping');
    return feeds[name];
  };
  const whole = (object, name, path, low, high) => {
    const value = object[name];
    if (!Number.isInteger(value) || value < low || value > high) {
      throw new ManifestError(where, `${key}.${path}`, `expected a whole number from ${low} to ${high}, got ${JSON.stringify(value)}`);
    }
    return value;
  };
  const positive = (object, name, path) => {
    const value = object[name];
    if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
      throw new ManifestError(where, `${key}.${path}`, `expected a number above 0, got ${JSON.stringify(value)}`);
    }
    return value;
  };
  const inputName = (object, path) => {
    if (typeof object.input !== 'string' || !object.input) {
      throw new ManifestError(where, `${key}.${path}.input`, 'expected the graph input\'s name');
    }
    return object.input;
  };
  const range = (object, path) => {
    const value = object.range;
    if (!Array.isArray(value) || value.length !== 2 || !value.every(Number.isFinite) || !(value[0] < value[1])) {
      throw new ManifestError(where, `${key}.${path}.range`, `expected [low, high], got ${JSON.stringify(value)}`);
    }
    return value;
  };
  const waveform = section('waveform');
  const frames = section('frames');
  const outputs = section('outputs');
  const modalities = feeds.modalities;
  if (!Array.isArray(modalities) || !modalities.length || !modalities.every((m) => m === 'audio' || m === 'video')) {
    throw new ManifestError(where, `${key}.modalities`, `expected a non-empty list of "audio" and "video", got ${JSON.stringify(modalities)}`);
  }
  if (typeof outputs.probabilities !== 'string') {
    throw new ManifestError(where, `${key}.outputs.probabilities`, 'expected the graph output\'s name');
  }
  const slack = feeds.range_slack;
  if (typeof slack !== 'number' || !(slack >= 0)) {
    throw new ManifestError(where, `${key}.range_slack`, `expected a number >= 0, got ${JSON.stringify(slack)}`);
  }
  const media = preprocessing.media;
  return {
    labels: [...manifest.labels],
    usesAudio: modalities.includes('audio'),
    usesVideo: modalities.includes('video'),
    rangeSlack: slack,
    maxInputFactor: whole(feeds, 'max_input_factor', 'max_input_factor', 1, 1e6),
    waveform: {
      input: inputName(waveform, 'waveform'),
      sampleRate: whole(waveform, 'sample_rate', 'waveform.sample_rate', 1000, 384000),
      clipSamples: whole(waveform, 'clip_samples', 'waveform.clip_samples', 1, 384000 * 3600),
      range: range(waveform, 'waveform'),
      minSeconds: positive(waveform, 'min_seconds', 'waveform.min_seconds'),
      maxSeconds: positive(waveform, 'max_seconds', 'waveform.max_seconds'),
    },
    frames: {
      input: inputName(frames, 'frames'),
      channels: whole(frames, 'channels', 'frames.channels', 1, 4),
      imageSize: whole(frames, 'image_size', 'frames.image_size', 1, 4096),
      frameCount: whole(frames, 'frame_count', 'frames.frame_count', 1, 10000),
      maxFrames: whole(frames, 'max_frames', 'frames.max_frames', 1, 10000),
      range: range(frames, 'frames'),
      uint8Scale: positive(frames, 'uint8_scale', 'frames.uint8_scale'),
    },
    audioMask: { input: inputName(section('audio_mask'), 'audio_mask'), present: section('audio_mask').present ?? 1, absent: section('audio_mask').absent ?? 0 },
    videoMask: { input: inputName(section('video_mask'), 'video_mask'), present: section('video_mask').present ?? 1, absent: section('video_mask').absent ?? 0 },
    outputs: { probabilities: outputs.probabilities, logits: typeof outputs.logits === 'string' ? outputs.logits : null },
    // how training decoded files (Python: preprocessing.media): the centre window kept, then the clip
    media: isObject(media) && Number.isFinite(media.decoded_seconds) && Number.isInteger(media.clip_samples)
      ? { decodedSeconds: media.decoded_seconds, clipSamples: media.clip_samples, video: media.video === true,
        faceCrop: media.face_crop === true }
      : null,
  };
}

function isObject(value) {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** manifest.json's bytes as text, refused as the Python runtime refuses them (artifact.py: _parse_manifest). */
export function decodeManifest(bytes, where) {
  if (bytes.length > MAX_MANIFEST_BYTES) {
    throw new ArtifactError(`${where}/${MANIFEST}: over ${MAX_MANIFEST_BYTES / 2 ** 20} MiB; not a lexiedge manifest`);
  }
  const bad = invalidUtf8At(bytes);
  if (bad >= 0) {
    throw new ArtifactError(`${where}/${MANIFEST}: unreadable manifest (not UTF-8 text at byte ${bad}); ` +
      'expected the UTF-8 JSON `lexiedge export` writes');
  }
  // ignoreBOM: a byte-order mark stays in the text and JSON.parse refuses it, as Python's json does
  return new TextDecoder('utf-8', { ignoreBOM: true }).decode(bytes);
}

/**
 * The offset of the first byte that does not start a well-formed UTF-8 sequence (the position
 * Python's UnicodeDecodeError reports: the sequence's first byte), or -1 when all of it is UTF-8.
 * Well-formed as the Unicode standard's table 3-7: no overlong forms, no surrogates, nothing above U+10FFFF.
 */
export function invalidUtf8At(bytes) {
  let i = 0;
  while (i < bytes.length) {
    const lead = bytes[i];
    if (lead < 0x80) {
      i += 1;
      continue;
    }
    let length;
    let low = 0x80;
    let high = 0xbf;
    if (lead >= 0xc2 && lead <= 0xdf) length = 2;
    else if (lead >= 0xe0 && lead <= 0xef) {
      length = 3;
      if (lead === 0xe0) low = 0xa0;
      if (lead === 0xed) high = 0x9f;
    } else if (lead >= 0xf0 && lead <= 0xf4) {
      length = 4;
      if (lead === 0xf0) low = 0x90;
      if (lead === 0xf4) high = 0x8f;
    } else return i;
    for (let k = 1; k < length; k += 1) {
      const next = bytes[i + k];
      if (next === undefined || next < (k === 1 ? low : 0x80) || next > (k === 1 ? high : 0xbf)) return i;
    }
    i += length;
  }
  return -1;
}
