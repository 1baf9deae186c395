// The page: options from /api/status, each dropped file sent to /api/jobs and polled until done.
'use strict';

const $ = (id) => document.getElementById(id);
const OPTION_FIELDS = ['model', 'upscale_factor', 'fidelity', 'color_fix', 'paste_mask'];
let fidelityTouched = false;

function fillSelect(select, values, chosen) {
  select.replaceChildren(...values.map(([value, label]) => {
    const option = new Option(label, value);
    option.selected = String(value) === String(chosen);
    return option;
  }));
}

async function loadStatus() {
  const status = await (await fetch('/api/status')).json();
  if (!$('model').options.length) {
    fillSelect($('model'), Object.entries(status.models).map(([name, text]) => [name, `${name}: ${text}`]));
    fillSelect($('color_fix'), status.choices.color_fix.map((v) => [v, v]), status.defaults.color_fix);
    fillSelect($('paste_mask'), status.choices.paste_mask.map((v) => [v, v]), status.defaults.paste_mask);
    $('upscale_factor').value = String(status.defaults.upscale_factor);
    $('fidelity').value = status.defaults.fidelity ?? 0.45;
    $('fidelity-value').textContent = 'model default';
    $('limits').textContent = `Up to ${status.max_upload_mb} MB and ${status.max_input_megapixels} megapixels a file.`;
  }
  const busy = status.running + status.waiting;
  $('model-state').textContent = `Model: ${status.model}` + (busy ? ` · ${busy} job(s) in progress` : '');
  $('model-state').classList.toggle('error', status.model.startsWith('failed'));
}

function formFor(file) {
  const form = new FormData();
  form.append('file', file, file.name);
  for (const name of OPTION_FIELDS) {
    if (name === 'fidelity' && !fidelityTouched) continue;  // the model's own default
    form.append(name, $(name).value);
  }
  return form;
}

function link(href, text, download) {
  const a = document.createElement('a');
  a.href = href;
  a.textContent = text;
  a.className = 'button';
  if (download) a.download = download;
  return a;
}

function showMessage(card, text, isError) {
  const state = card.querySelector('.state');
  state.textContent = text;
  state.classList.toggle('error', Boolean(isError));
}

function showResult(card, job) {
  const stem = job.name.replace(/\.[^.]*$/, '');
  card.querySelector('progress').hidden = true;
  showMessage(card, `Done: ${job.width} × ${job.height} px, ${job.faces} face(s) restored` +
    (job.skipped && job.skipped.length ? `, ${job.skipped.length} skipped` : '') + '.');
  const compare = card.querySelector('.compare');
  card.querySelector('.before').src = job.files.input;
  card.querySelector('.after').src = job.files.restored;
  compare.hidden = false;
  const links = card.querySelector('.links');
  if (job.files.video) {
    const video = card.querySelector('.video');
    video.src = job.files.video;
    video.hidden = false;
    links.append(link(job.files.video, 'Download video', `${stem}_restored.mp4`));
  } else {
    links.append(link(job.files.restored, 'Download', `${stem}_restored.png`));
  }
  const faces = card.querySelector('.faces');
  for (let i = 0; job.files[`face${String(i).padStart(2, '0')}_before`]; i++) {
    const key = `face${String(i).padStart(2, '0')}`;
    const pair = document.createElement('div');
    pair.className = 'face';
    for (const role of ['before', 'after']) {
      const img = new Image();
      img.src = job.files[`${key}_${role}`];
      img.alt = `face ${i + 1} ${role}`;
      img.title = img.alt;
      pair.append(img);
    }
    faces.append(pair);
  }
  $('download-all').hidden = false;
}

async function follow(card, job) {
  while (job.state === 'queued' || job.state === 'running') {
    showMessage(card, job.state === 'queued' ? `Waiting (${job.position} ahead)…` :
      `Restoring… ${Math.round(job.progress * 100)}%`);
    card.querySelector('progress').value = job.progress;
    await new Promise((resolve) => setTimeout(resolve, 700));
    const response = await fetch(`/api/jobs/${job.id}`);
    if (!response.ok) return showMessage(card, (await response.json()).error, true);
    job = await response.json();
  }
  if (job.state === 'done') showResult(card, job);
  else showMessage(card, job.message, true);
  loadStatus();
}

async function send(file) {
  const card = $('card').content.firstElementChild.cloneNode(true);
  card.querySelector('.name').textContent = file.name;
  showMessage(card, 'Uploading…');
  $('results').prepend(card);
  try {
    const response = await fetch('/api/jobs', { method: 'POST', body: formFor(file) });
    const body = await response.json().catch(() => ({ error: `the server answered ${response.status}` }));
    if (!response.ok) {
      card.querySelector('progress').hidden = true;
      return showMessage(card, body.error, true);
    }
    await follow(card, body);
  } catch (exc) {
    showMessage(card, `The server cannot be reached (${exc.message}).`, true);
  }
}

function sendAll(files) {
  for (const file of files) send(file);
}

$('files').addEventListener('change', (event) => { sendAll(event.target.files); event.target.value = ''; });
$('fidelity').addEventListener('input', () => {
  fidelityTouched = true;
  $('fidelity-value').textContent = $('fidelity').value;
});
$('results').addEventListener('input', (event) => {
  if (!event.target.classList.contains('slider')) return;
  const clip = event.target.closest('.compare').querySelector('.after-clip');
  clip.style.clipPath = `inset(0 0 0 ${event.target.value}%)`;
});
const drop = $('drop');
drop.addEventListener('dragover', (event) => { event.preventDefault(); drop.classList.add('over'); });
drop.addEventListener('dragleave', () => drop.classList.remove('over'));
drop.addEventListener('drop', (event) => {
  event.preventDefault();
  drop.classList.remove('over');
  sendAll(event.dataTransfer.files);
});
loadStatus();
setInterval(loadStatus, 5000);
