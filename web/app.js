// The demo page: two tabs over POST /api/explain. Every text from a user or the server reaches
// the page through textContent or attributes, never as HTML.
'use strict';

const SENTENCES = [
  'a girl and a boy at a desktop computer',
  'Hermione, Harry and Ron in their school uniform',
  'In this image we see Big Ben and the London Eye, on both sides of the river Thames.',
];
const PHRASE_COLOURS = ['#ffd43b', '#8ce99a', '#74c0fc', '#ffa8a8', '#d0bfff', '#ffc078', '#96f2d7'];

function element(tag, attributes = {}, children = []) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (name === 'text') node.textContent = value;
    else node.setAttribute(name, value);
  }
  for (const child of children) node.append(child);
  return node;
}

// An image picker: file input, drop, paste (into the visible tab), or a bundled example.
function makePicker(root, examples) {
  root.append(document.getElementById('picker-template').content.cloneNode(true));
  const input = root.querySelector('[data-file]');
  const preview = root.querySelector('[data-preview]');
  const hint = root.querySelector('[data-hint]');
  const drop = root.querySelector('.drop');
  const state = { file: null, example: null };
  const buttons = [];

  function show(url) {
    preview.src = url;
    preview.hidden = false;
    hint.hidden = true;
  }
  function useFile(file) {
    if (!file) return;
    state.file = file;
    state.example = null;
    for (const b of buttons) b.setAttribute('aria-pressed', 'false');
    show(URL.createObjectURL(file));
  }
  function useExample(name, button) {
    state.file = null;
    state.example = name;
    for (const b of buttons) b.setAttribute('aria-pressed', String(b === button));
    show('/examples/' + encodeURIComponent(name));
  }
  input.addEventListener('change', () => useFile(input.files[0]));
  drop.addEventListener('dragover', (event) => { event.preventDefault(); drop.classList.add('dragging'); });
  drop.addEventListener('dragleave', () => drop.classList.remove('dragging'));
  drop.addEventListener('drop', (event) => {
    event.preventDefault();
    drop.classList.remove('dragging');
    useFile(event.dataTransfer.files[0]);
  });
  const list = root.querySelector('[data-examples]');
  for (const name of examples) {
    const button = element('button', { type: 'button', title: name, 'aria-pressed': 'false' },
                           [element('img', { src: '/examples/' + encodeURIComponent(name), alt: name })]);
    button.addEventListener('click', () => useExample(name, button));
    buttons.push(button);
    list.append(button);
  }
  return {
    useFile,
    // Adds the image to a form; false when none is chosen.
    addTo(form) {
      if (state.file) form.append('image', state.file, state.file.name || 'pasted.png');
      else if (state.example) form.append('example', state.example);
      else return false;
      return true;
    },
  };
}

function fillSelect(select, names, chosen, titles = {}) {
  select.replaceChildren(...names.map((name) => {
    const option = element('option', { value: name, text: name });
    if (titles[name]) option.title = titles[name];
    if (name === chosen) option.selected = true;
    return option;
  }));
}

function setStatus(form, text, isError = false) {
  const status = form.querySelector('[data-status]');
  status.textContent = text;
  status.classList.toggle('error', isError);
}

async function postExplain(form, fields) {
  const started = performance.now();
  const response = await fetch('/api/explain', { method: 'POST', body: fields });
  let answer;
  try {
    answer = await response.json();
  } catch (error) {
    throw new Error(`the server answered ${response.status} without JSON`);
  }
  if (!response.ok) {
    const retry = response.headers.get('Retry-After');
    throw new Error(answer.error + (retry ? ` (try again in ${retry} s)` : ''));
  }
  answer.seconds = (performance.now() - started) / 1000;
  return answer;
}

function slug(text) {
  return text.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '').slice(0, 60) || 'prompt';
}

function download(name, blob) {
  const link = element('a', { href: URL.createObjectURL(blob), download: name });
  document.body.append(link);
  link.click();
  link.remove();
}

// The overlay as shown: the backdrop with the heat map over it at the slider's alpha.
function overlayBlob(card) {
  const [backdrop, heat] = card.querySelectorAll('.layers img');
  const canvas = element('canvas');
  canvas.width = backdrop.naturalWidth;
  canvas.height = backdrop.naturalHeight;
  const context = canvas.getContext('2d');
  context.drawImage(backdrop, 0, 0);
  context.globalAlpha = Number(heat.style.opacity);
  context.drawImage(heat, 0, 0);
  return new Promise((resolve) => canvas.toBlob(resolve, 'image/png'));
}

// The CLI's result object, without the page's compositing layers.
function cliResult(answer) {
  const result = structuredClone(answer);
  delete result.backdrop;
  delete result.seconds;
  for (const prompt of result.prompts) delete prompt.heatmap;
  return result;
}

function tokenRow(tokens) {
  if (!tokens) return element('p', { class: 'muted', text: 'This method gives no token relevance.' });
  const highest = Math.max(...tokens.map((t) => t.relevance), 1e-9);
  return element('p', { class: 'tokens' }, tokens.map((token) => {
    const share = Math.max(0, token.relevance) / highest;
    return element('span', {
      class: 'token',
      title: `relevance ${token.relevance.toFixed(3)}`,
      'data-relevance': String(token.relevance),
      style: `background: rgba(217, 72, 15, ${(0.08 + 0.72 * share).toFixed(3)})`,
      text: token.token,
    });
  }));
}

function resultCard(answer, prompt, alpha, label) {
  const heat = element('img', { class: 'heat', src: prompt.heatmap, alt: '' });
  heat.style.opacity = String(alpha);
  const card = element('figure', {
    class: 'card',
    'data-probability': String(prompt.probability),
    'data-logit': String(prompt.logit),
  }, [
    element('div', { class: 'layers' }, [
      element('img', { class: 'backdrop', src: answer.backdrop, alt: `what the model looked at for “${prompt.text}”` }),
      heat,
    ]),
  ]);
  const png = element('a', { text: 'PNG', role: 'button' });
  png.addEventListener('click', async () => download(`${slug(prompt.text)}.png`, await overlayBlob(card)));
  const json = element('a', { text: 'JSON', role: 'button' });
  json.addEventListener('click', () => {
    const text = JSON.stringify(cliResult(answer), null, 2) + '\n';
    download(`${slug(answer.image)}.json`, new Blob([text], { type: 'application/json' }));
  });
  card.append(element('figcaption', {}, [
    element('span', { class: 'label', text: label ?? prompt.text }),
    element('span', {
      class: 'scores',
      text: `p = ${prompt.probability.toFixed(4)}   logit = ${prompt.logit.toFixed(3)}`,
    }),
    tokenRow(prompt.tokens),
    element('span', { class: 'downloads' }, [png, json]),
  ]));
  return card;
}

function bindAlpha(form, container) {
  const slider = form.querySelector('[data-alpha]');
  const shown = form.querySelector('[data-alpha-value]');
  slider.addEventListener('input', () => {
    shown.textContent = slider.value;
    for (const heat of container.querySelectorAll('img.heat')) heat.style.opacity = slider.value;
  });
  return slider;
}

function commonFields(form, picker, methodSelect, colormapSelect) {
  const fields = new FormData();
  if (!picker.addTo(fields)) throw new Error('Choose an image first: drop, paste, pick a file or an example.');
  fields.append('method', methodSelect.value);
  fields.append('colormap', colormapSelect.value);
  fields.append('alpha', form.querySelector('[data-alpha]').value);
  fields.append('layers', 'true');
  return fields;
}

async function submitting(form, button, work) {
  button.disabled = true;
  setStatus(form, 'Explaining…');
  try {
    await work();
  } catch (error) {
    setStatus(form, error.message, true);
  } finally {
    button.disabled = false;
  }
}

// A tab's form: its image picker and alpha slider; on submit, the fields common to both tabs
// plus the tab's own (addFields) go to /api/explain, and show() displays the answer.
function explainingForm(info, { form, results, method, colormap, button, addFields, show }) {
  const picker = makePicker(form.querySelector('[data-picker]'), info.examples);
  const alpha = bindAlpha(form, results);
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    submitting(form, button, async () => {
      const fields = commonFields(form, picker, method, colormap);
      addFields(fields);
      show(await postExplain(form, fields), alpha.value);
    });
  });
  return picker;
}

function explainTab(info) {
  const form = document.getElementById('explain-form');
  const results = document.getElementById('explain-results');
  return explainingForm(info, {
    form,
    results,
    method: document.getElementById('method'),
    colormap: document.getElementById('colormap'),
    button: document.getElementById('explain-button'),
    addFields(fields) {
      const prompts = document.getElementById('prompts').value.split('\n').map((p) => p.trim()).filter(Boolean);
      if (prompts.length === 0) throw new Error('Type one or more prompts, one per line.');
      for (const prompt of prompts) fields.append('prompt', prompt);
      const startLayer = document.getElementById('start-layer').value;
      if (startLayer !== '') fields.append('start_layer', startLayer);
      fields.append('crop', document.getElementById('crop').value);
      const contrast = document.getElementById('contrast').value.trim();
      if (contrast) fields.append('contrast', contrast);
      for (const param of document.getElementById('params').value.split(',')) {
        if (param.trim()) fields.append('param', param.trim());
      }
    },
    show(answer, alpha) {
      results.replaceChildren(...answer.prompts.map((prompt) => resultCard(answer, prompt, alpha)));
      setStatus(form, `${answer.image}: ${answer.width}×${answer.height}, ${answer.prompts.length} prompt(s) in ${answer.seconds.toFixed(2)} s`);
    },
  });
}

function sentenceView(sentence, prompts) {
  const characters = Array.from(sentence);  // spans count code points
  const view = document.getElementById('sentence-view');
  const parts = [];
  let at = 0;
  prompts.filter((p) => p.span).forEach((prompt, index) => {
    const [start, end] = prompt.span;
    if (start > at) parts.push(document.createTextNode(characters.slice(at, start).join('')));
    const mark = element('mark', { text: characters.slice(start, end).join('') },
                         [element('sup', { text: String(index + 1) })]);
    mark.style.background = PHRASE_COLOURS[index % PHRASE_COLOURS.length];
    parts.push(mark);
    at = end;
  });
  if (at < characters.length) parts.push(document.createTextNode(characters.slice(at).join('')));
  view.replaceChildren(...parts);
}

function entitiesTab(info) {
  const form = document.getElementById('entities-form');
  const gallery = document.getElementById('entities-results');
  const sentence = document.getElementById('sentence');
  const chips = document.getElementById('example-sentences');
  for (const text of SENTENCES) {
    const chip = element('button', { type: 'button', text });
    chip.addEventListener('click', () => { sentence.value = text; });
    chips.append(chip);
  }
  let text = '';
  return explainingForm(info, {
    form,
    results: gallery,
    method: document.getElementById('entities-method'),
    colormap: document.getElementById('entities-colormap'),
    button: document.getElementById('entities-button'),
    addFields(fields) {
      text = sentence.value.trim();
      if (!text) throw new Error('Type a sentence.');
      fields.append('phrases', text);
    },
    show(answer, alpha) {
      sentenceView(text, answer.prompts);
      let phrase = 0;
      gallery.replaceChildren(...answer.prompts.map((prompt) => {
        const label = prompt.span ? `${++phrase}. ${prompt.text}` : `sentence: ${prompt.text}`;
        return resultCard(answer, prompt, alpha, label);
      }));
      const found = answer.prompts.length - 1;
      setStatus(form, `${found} noun phrase${found === 1 ? '' : 's'}, explained in ${answer.seconds.toFixed(2)} s`);
    },
  });
}

function tabs() {
  const pairs = [['tab-explain', 'panel-explain'], ['tab-entities', 'panel-entities']];
  for (const [tabId, panelId] of pairs) {
    document.getElementById(tabId).addEventListener('click', () => {
      for (const [otherTab, otherPanel] of pairs) {
        document.getElementById(otherTab).setAttribute('aria-selected', String(otherTab === tabId));
        document.getElementById(otherPanel).hidden = otherPanel !== panelId;
      }
    });
  }
}

async function start() {
  tabs();
  const response = await fetch('/api/info');
  const info = await response.json();
  document.getElementById('model-line').textContent =
    `Model: ${info.name}, ViT ${info.vision_layers} layers, ${info.grid}×${info.grid} patches of ${info.patch_size} px, ` +
    `context ${info.context_length} tokens.`;
  const titles = Object.fromEntries(info.methods.map((m) => [m.name, m.summary]));
  for (const select of document.querySelectorAll('[data-method]')) {
    fillSelect(select, info.methods.map((m) => m.name), 'chefer2021', titles);
  }
  for (const select of document.querySelectorAll('[data-colormap]')) fillSelect(select, info.colormaps, 'jet');
  const pickers = { 'panel-explain': explainTab(info), 'panel-entities': entitiesTab(info) };
  document.addEventListener('paste', (event) => {
    const file = [...event.clipboardData.files].find((f) => f.type.startsWith('image/'));
    if (!file) return;
    const visible = document.querySelector('section[role="tabpanel"]:not([hidden])');
    pickers[visible.id].useFile(file);
  });
}

start().catch((error) => {
  document.getElementById('model-line').textContent = `The server did not answer: ${error.message}`;
});
