// Turning a graph's overridable initializers into plain inputs, in memory, before a session exists.
//
// A speaker-normalised graph (the manifest's enrollment section) takes a speaker's profile through two
// graph inputs that have initializers: fed nothing, they hold the global training statistics. ONNX
// Runtime's JavaScript API cannot feed such an input: onnxruntime-web refuses the name ("invalid input")
// and onnxruntime-node ignores it without a word. So runtime-js removes those two initializers from the
// model's bytes (after their sha256 was checked), which leaves them ordinary inputs, and keeps their
// values to feed itself when no profile is given: the same graph, the same numbers, fed explicitly.
//
// Only ModelProto.graph (field 7) and GraphProto.initializer (field 5) are parsed; every other byte is
// copied as it was. Wire format: https://protobuf.dev/programming-guides/encoding/

const MODEL_GRAPH = 7;
const GRAPH_INITIALIZER = 5;
const TENSOR = { dims: 1, dataType: 2, floatData: 4, name: 8, rawData: 9 };
const FLOAT = 1; // TensorProto.DataType.FLOAT

/**
 * ``bytes`` (an ONNX model) without the initializers named in ``names``: ``{model, values}`` where
 * ``values[name]`` is ``{dims, data: Float32Array}``. Throws an Error naming what it could not find.
 */
export function freeInitializers(bytes, names) {
  const wanted = new Set(names);
  const graphField = fields(bytes, 0, bytes.length).find((f) => f.number === MODEL_GRAPH && f.wire === 2);
  if (!graphField) throw new Error('the model has no graph');
  const values = {};
  const kept = [];
  let cursor = graphField.start;
  for (const field of fields(bytes, graphField.start, graphField.end)) {
    if (field.number !== GRAPH_INITIALIZER || field.wire !== 2) continue;
    const tensor = readTensor(bytes, field.start, field.end);
    if (!wanted.has(tensor.name)) continue;
    values[tensor.name] = tensor;
    kept.push(bytes.subarray(cursor, field.keyStart)); // everything before this initializer, unchanged
    cursor = field.end;
  }
  const missing = names.filter((name) => !(name in values));
  if (missing.length) throw new Error(`the graph has no float initializer named ${missing.join(', ')}`);
  kept.push(bytes.subarray(cursor, graphField.end));
  const graph = concat(kept);
  return {
    model: concat([
      bytes.subarray(0, graphField.keyStart), encodeVarint(MODEL_GRAPH * 8 + 2), encodeVarint(graph.length),
      graph, bytes.subarray(graphField.end),
    ]),
    values,
  };
}

function readTensor(bytes, start, end) {
  const tensor = { name: '', dims: [], dataType: 0, data: null };
  const floats = [];
  for (const field of fields(bytes, start, end)) {
    if (field.number === TENSOR.name && field.wire === 2) {
      tensor.name = new TextDecoder().decode(bytes.subarray(field.start, field.end));
    } else if (field.number === TENSOR.dims) {
      if (field.wire === 0) tensor.dims.push(field.value);
      else {
        for (let at = field.start, dim; at < field.end; tensor.dims.push(dim)) {
          [dim, at] = readVarint(bytes, at);
        }
      }
    } else if (field.number === TENSOR.dataType && field.wire === 0) {
      tensor.dataType = field.value;
    } else if (field.number === TENSOR.rawData && field.wire === 2) {
      tensor.data = littleEndianFloats(bytes, field.start, field.end);
    } else if (field.number === TENSOR.floatData) {
      if (field.wire === 2) floats.push(...littleEndianFloats(bytes, field.start, field.end));
      else if (field.wire === 5) floats.push(...littleEndianFloats(bytes, field.start, field.start + 4));
    }
  }
  if (tensor.dataType !== FLOAT) return { ...tensor, data: null };
  tensor.data ??= Float32Array.from(floats);
  return tensor;
}

function littleEndianFloats(bytes, start, end) {
  const view = new DataView(bytes.buffer, bytes.byteOffset + start, end - start);
  const out = new Float32Array((end - start) / 4);
  for (let i = 0; i < out.length; i++) out[i] = view.getFloat32(i * 4, true);
  return out;
}

/** The fields of the message in ``bytes[start, end)``: number, wire type, where its key and value lie. */
function fields(bytes, start, end) {
  const out = [];
  let at = start;
  while (at < end) {
    const keyStart = at;
    let key;
    [key, at] = readVarint(bytes, at);
    const number = Math.floor(key / 8);
    const wire = key % 8;
    const field = { number, wire, keyStart, start: at, end: at, value: 0 };
    if (wire === 0) {
      [field.value, at] = readVarint(bytes, at);
    } else if (wire === 1) {
      at += 8;
    } else if (wire === 2) {
      let length;
      [length, at] = readVarint(bytes, at);
      field.start = at;
      at += length;
    } else if (wire === 5) {
      at += 4;
    } else {
      throw new Error(`unsupported protobuf wire type ${wire}`);
    }
    if (at > end) throw new Error('a truncated protobuf message');
    field.end = at;
    out.push(field);
  }
  return out;
}

function readVarint(bytes, at) {
  let value = 0;
  let scale = 1;
  for (;;) {
    if (at >= bytes.length) throw new Error('a truncated protobuf varint');
    const byte = bytes[at++];
    value += (byte & 0x7f) * scale; // arithmetic, not shifts: lengths and dims may pass 2^31
    if (byte < 0x80) return [value, at];
    scale *= 128;
  }
}

function encodeVarint(value) {
  const out = [];
  let rest = value;
  while (rest >= 128) {
    out.push((rest % 128) | 0x80);
    rest = Math.floor(rest / 128);
  }
  out.push(rest);
  return Uint8Array.from(out);
}

function concat(parts) {
  const out = new Uint8Array(parts.reduce((total, part) => total + part.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}
