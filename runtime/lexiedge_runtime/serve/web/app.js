// The demo page: the emotion classifier runs here, in the browser (onnxruntime-web, WASM), on the
// audio of a file or of a recording; the tutor streams from the server's /v1/chat/completions.
// Everything about the model comes from its manifest.json, read by the JavaScript runtime (runtime-js).

const $ = (id) => document.getElementById(id);
const state = { key: sessionStorage.getItem('lexiedge-key') || '', classifier: null, rt: null, ort: null,
  tutor: null, history: [], emotion: null };

function headers(extra = {}) {
  return state.key ? { ...extra, Authorization: `Bearer ${state.key}` } : extra;
}

function setStatus(text, problem = false) {
  $('status').textContent = text;
  $('status').classList.toggle('problem', problem);
}

function showError(text) {
  $('error').textContent = text;
  $('error').hidden = !text;
}

async function api(path, options = {}) {
  const response = await fetch(path, { ...options, headers: headers(options.headers) });
  if (response.status === 401) {
    $('key-row').hidden = false;
    throw new Error('this server needs its API key: enter it above');
  }
  return response;
}

async function start() {
  const status = await (await fetch('/web/status.json')).json();
  if (status.key_required) $('key-row').hidden = false;
  $('key').value = state.key;
  let models = [];
  try {
    const listed = await api('/v1/models');
    models = listed.ok ? (await listed.json()).data : [];
  } catch (error) {
    setStatus(error.message, true);
    return;
  }
  setupChat(models.find((m) => status.tasks.chat.includes(m.task))); // the tasks' specs say which generate
  const classifiers = models.filter((m) => m.task === status.tasks.classify);
  if (!status.runtime) return setStatus(status.problem, true);
  if (!classifiers.length) return setStatus('no emotion classifier is served (start lexiedge serve with an emotion-av artifact)', true);
  try {
    state.ort = await import(status.ort);
    state.ort.env.wasm.wasmPaths = status.ort.replace(/[^/]*$/, '');
    state.ort.env.wasm.numThreads = self.crossOriginIsolated ? 0 : 1;
    state.rt = await import(status.module);
  } catch (error) {
    return setStatus(`cannot load the in-browser runtime (${status.ort}, ${status.module}): ${error.message}`, true);
  }
  $('model').replaceChildren(...classifiers.map((m) => new Option(m.id, m.id)));
  $('model-row').hidden = classifiers.length < 2;
  $('model').onchange = () => loadModel($('model').value);
  await loadModel(classifiers[0].id);
}

async function loadModel(name) {
  state.classifier = null;
  $('record').disabled = true;
  setStatus(`Loading ${name}: checking every file's sha256 (${state.rt.sha256Implementation()})…`);
  try {
    const started = performance.now();
    state.classifier = await state.rt.loadClassifier(`/web/models/${encodeURIComponent(name)}`,
      { ort: state.ort, headers: headers(), sessionOptions: { executionProviders: ['wasm'] } });
    const spec = state.classifier.spec;
    setStatus(`${name} ready in ${(performance.now() - started).toFixed(0)} ms: runs here (WASM), ` +
      `${spec.labels.length} emotions, audio at ${spec.waveform.sampleRate} Hz.`);
    $('modality').textContent = spec.usesVideo
      ? 'Audio only: face crops as training made them (OpenCV\'s Haar cascade) are not computed in the browser, ' +
        'so the visual branch is masked (video_mask 0). A video file is classified on its sound.'
      : 'Audio model.';
    $('record').disabled = !navigator.mediaDevices?.getUserMedia;
    if ($('record').disabled) $('record').title = 'the microphone needs https or localhost';
  } catch (error) {
    setStatus(`cannot load ${name}: ${error.message}`, true);
  }
}

async function classify(bytes, what) {
  showError('');
  if (!state.classifier) return showError('no model is loaded yet');
  let audio;
  const decodeStarted = performance.now();
  try {
    audio = await decodeAudio(bytes);
  } catch (error) {
    $('result').hidden = true;
    return showError(`cannot decode ${what}: not an audio or video file this browser can read (${error.message || error.name})`);
  }
  const decodeMs = performance.now() - decodeStarted;
  try {
    const started = performance.now();
    const result = await state.classifier.predictAudio(audio.channels, audio.sampleRate);
    showResult(result, performance.now() - started, decodeMs, what);
  } catch (error) {
    $('result').hidden = true;
    showError(`${what}: ${error.message}`);
  }
}

async function decodeAudio(bytes) {
  // a wav is decoded at its own rate (the browser does not resample it); other files at 48 kHz;
  // the JavaScript runtime then resamples to the model's rate, as the Python runtime does
  const info = state.rt.wavInfo(new Uint8Array(bytes));
  const rate = info && info.sampleRate >= 3000 && info.sampleRate <= 768000 ? info.sampleRate : 48000;
  const context = new OfflineAudioContext(1, 1, rate);
  const buffer = await context.decodeAudioData(bytes);
  const channels = Array.from({ length: buffer.numberOfChannels }, (_, c) => buffer.getChannelData(c));
  return { channels, sampleRate: buffer.sampleRate };
}

function showResult(result, inferenceMs, decodeMs, what) {
  state.emotion = result.label;
  $('label').textContent = result.label;
  $('result').dataset.label = result.label;
  $('result').dataset.probabilities = JSON.stringify(Array.from(result.scores));
  $('result').dataset.inferenceMs = inferenceMs.toFixed(2);
  $('latency').textContent = `${what}: ${inferenceMs.toFixed(1)} ms in the browser (WASM), decode ${decodeMs.toFixed(0)} ms`;
  const rows = state.classifier.labels.flatMap((label, i) => {
    const p = result.scores[i];
    const name = Object.assign(document.createElement('span'), { textContent: label });
    const bar = Object.assign(document.createElement('div'), { className: i === result.index ? 'bar top' : 'bar' });
    bar.style.width = `${((100 * p) / result.scores[result.index]).toFixed(1)}%`; // the top one fills the row
    const value = Object.assign(document.createElement('span'), { textContent: `${(100 * p).toFixed(1)}%` });
    return [name, bar, value];
  });
  $('bars').replaceChildren(...rows);
  $('result').hidden = false;
}

async function record() {
  const seconds = Math.max(3, Math.ceil(state.classifier.spec.media?.decodedSeconds ?? 3));
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ audio: true });
  } catch (error) {
    return showError(`no microphone: ${error.message}`);
  }
  const recorder = new MediaRecorder(stream);
  const chunks = [];
  recorder.ondataavailable = (event) => chunks.push(event.data);
  const stopped = new Promise((resolve) => { recorder.onstop = resolve; });
  recorder.start();
  $('record').disabled = true;
  $('record').textContent = `Recording ${seconds} s…`;
  setTimeout(() => recorder.stop(), seconds * 1000);
  await stopped;
  stream.getTracks().forEach((track) => track.stop());
  $('record').textContent = 'Record';
  $('record').disabled = false;
  await classify(await new Blob(chunks).arrayBuffer(), `a ${seconds} s recording`);
}

function setupChat(tutor) {
  state.tutor = tutor;
  $('chat-send').disabled = !tutor;
  $('chat-note').textContent = tutor
    ? `Streams from ${tutor.id} on the server (/v1/chat/completions).`
    : 'No tutor is served (start lexiedge serve with a qwen-lora artifact too).';
}

function addMessage(role, text) {
  const message = Object.assign(document.createElement('div'), { className: `msg ${role}`, textContent: text });
  $('chat-log').append(message);
  return message;
}

async function sendChat(event) {
  event.preventDefault();
  const text = $('chat-input').value.trim();
  if (!text || !state.tutor) return;
  $('chat-input').value = '';
  addMessage('user', text);
  state.history.push({ role: 'user', content: text });
  const mood = state.emotion ? ` The learner's voice sounded ${state.emotion}.` : '';
  const messages = [{ role: 'system', content: `You are a friendly English tutor.${mood}` }, ...state.history];
  const reply = addMessage('assistant', '');
  $('chat-send').disabled = true;
  try {
    const response = await api('/v1/chat/completions', {
      method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ model: state.tutor.id, messages, stream: true, max_tokens: 128, temperature: 0 }),
    });
    if (!response.ok) throw new Error((await response.json()).error?.message ?? `HTTP ${response.status}`);
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffered = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffered += value;
      const events = buffered.split('\n\n');
      buffered = events.pop();
      for (const line of events.map((e) => e.replace(/^data: /, ''))) {
        if (line === '[DONE]') continue;
        const chunk = JSON.parse(line);
        if (chunk.error) throw new Error(chunk.error.message);
        reply.textContent += chunk.choices?.[0]?.delta?.content ?? '';
      }
    }
    reply.dataset.done = 'true';
    state.history.push({ role: 'assistant', content: reply.textContent });
  } catch (error) {
    reply.textContent = `(the tutor failed: ${error.message})`;
  } finally {
    $('chat-send').disabled = false;
  }
}

$('file').onchange = async () => {
  const file = $('file').files[0];
  if (file) await classify(await file.arrayBuffer(), file.name);
};
$('record').onclick = record;
$('chat').onsubmit = sendChat;
$('key-save').onclick = () => {
  state.key = $('key').value.trim();
  sessionStorage.setItem('lexiedge-key', state.key);
  start();
};
window.lexiedgeDemo = state; // for the browser test and bench/bench_browser.py
start().catch((error) => setStatus(`the page failed to start: ${error.message}`, true));
