// Buckets (list, create, browse, upload with progress), the import form, access keys and the quota.

import {api, enc, uploadObject} from './api.js';
import {clear, confirmDialog, field, formatBytes, h, select, table} from './dom.js';

async function bucketNames(ctx) {
  return (await api('GET', '/obs', {signal: ctx.signal})).buckets.map((b) => b.name);
}

async function objectsOf(ctx, bucket) {
  return (await api('GET', `/obs/${enc(bucket)}`, {signal: ctx.signal})).objects;
}

/** A file picker and an Upload button with a progress bar; onDone(key) after a successful upload. */
function uploader(ctx, bucketOf, onDone) {
  const file = h('input', {type: 'file'});
  const bar = h('progress', {max: 100, value: 0, 'aria-label': 'Upload progress'});
  const status = h('span', {class: 'upload-status', 'aria-live': 'polite'});
  const button = h('button', {type: 'submit', text: 'Upload'});
  const form = h('form', {class: 'inline uploader', 'aria-label': 'Upload a local file'},
    field('Local file', file), button, h('div', {class: 'progress-row'}, bar, status));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const chosen = file.files[0]; const bucket = bucketOf();
    if (!chosen) { ctx.ui.error('Choose a file to upload.'); return; }
    if (!bucket) { ctx.ui.error('Choose or create a bucket first.'); return; }
    button.disabled = true;
    status.textContent = `Uploading ${chosen.name}…`;
    const ok = await ctx.ui.run(() => uploadObject(bucket, chosen.name, chosen, (loaded, total) => {
      const p = total ? Math.round((loaded / total) * 100) : 0;
      bar.value = p;
      status.textContent = `Uploading ${chosen.name}: ${p} % (${formatBytes(loaded)} of ${formatBytes(total)})`;
    }).then(() => true));
    button.disabled = false;
    if (ok) {
      status.textContent = `Uploaded ${chosen.name} to ${bucket}.`;
      await onDone(chosen.name);
    } else {
      status.textContent = 'Upload failed.';
    }
  });
  return form;
}

export async function bucketsView(ctx) {
  const names = await bucketNames(ctx);
  const name = h('input', {required: true, minlength: 3, maxlength: 63, pattern: '[a-z0-9][a-z0-9.\\-]{1,61}[a-z0-9]'});
  const form = h('form', {class: 'inline', 'aria-label': 'Create a bucket'},
    field('New bucket name', name, '3-63 lower-case letters, digits, hyphens and periods'),
    h('button', {type: 'submit', text: 'Create bucket'}));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const bucket = name.value.trim();
    const r = await ctx.ui.run(() => api('PUT', `/obs/${enc(bucket)}`));
    if (r) { ctx.ui.flash(`Bucket ${bucket} is ready.`); ctx.go(`#/buckets/${enc(bucket)}`); }
  });
  clear(ctx.view, h('h1', {text: 'Buckets'}), form,
    table('Buckets of the account', ['Bucket'], names.map((n) => [h('a', {href: `#/buckets/${enc(n)}`, text: n})]),
      'No buckets yet.'));
}

export async function bucketView(ctx, bucket) {
  const list = h('div');
  const refresh = async () => {
    const objects = await objectsOf(ctx, bucket);
    clear(list, table(`Objects in ${bucket}`, ['Key', 'Size', 'Last modified'],
      objects.map((o) => [o.key, formatBytes(o.size), o.last_modified || '']), 'The bucket is empty.'));
  };
  clear(ctx.view, h('div', {class: 'title-row'}, h('h1', {text: `Bucket ${bucket}`}),
    h('a', {href: '#/buckets', text: 'All buckets'})),
  uploader(ctx, () => bucket, refresh), list);
  await refresh();
}

function flattenVersions(platforms) {
  const out = [];
  for (const p of platforms) for (const v of p.version_list || []) out.push(v.os_version);
  return out.sort();
}

export async function importView(ctx) {
  const [names, platforms] = await Promise.all([bucketNames(ctx),
    api('GET', '/v1/cloudimages/os_version', {signal: ctx.signal})]);
  const bucket = select([['', 'Choose a bucket'], ...names.map((n) => [n, n])], names[0] || '');
  const file = h('select', {required: true});
  // The files of the chosen bucket. A refill of the same bucket keeps the file chosen meanwhile, and an
  // answer for a bucket no longer chosen (a quick change of mind) is dropped.
  let filled = ''; let asked = 0;
  const fillFiles = async (selected) => {
    const which = bucket.value; const mine = ++asked;
    if (!which) { filled = ''; clear(file, h('option', {value: '', text: 'No bucket chosen'})); return; }
    const objects = await objectsOf(ctx, which);
    if (mine !== asked) return;
    const keep = selected ?? (filled === which ? file.value : undefined);
    filled = which;
    clear(file, objects.length ? objects.map((o) => h('option', {value: o.key, text: `${o.key} (${formatBytes(o.size)})`,
      selected: o.key === keep})) : h('option', {value: '', text: 'The bucket is empty'}));
  };
  bucket.addEventListener('change', () => ctx.ui.run(() => fillFiles()));
  const newBucket = h('input', {minlength: 3, maxlength: 63});
  const makeBucket = h('button', {type: 'button', text: 'Create bucket', onclick: async () => {
    const n = newBucket.value.trim();
    if (!n) return;
    const r = await ctx.ui.run(() => api('PUT', `/obs/${enc(n)}`));
    if (r) {
      if (![...bucket.options].some((o) => o.value === n)) bucket.append(h('option', {value: n, text: n}));
      bucket.value = n; newBucket.value = '';
      await fillFiles();
    }
  }});

  const name = h('input', {required: true, maxlength: 128});
  const description = h('textarea', {maxlength: 1024});
  const os = select([['', 'Choose an OS version'], ...flattenVersions(platforms).map((v) => [v, v])], '');
  const minDisk = h('input', {type: 'number', min: 1, max: 1024, value: '40', required: true});
  const tags = h('input', {placeholder: 'key=value, key2=value2'});
  const quick = h('input', {type: 'checkbox'});
  const disks = h('div', {class: 'data-disks'});
  // The disks are numbered by position: removing one renumbers the others (no two "Data disk 2").
  const renumber = () => {
    [...disks.children].forEach((box, i) => {
      const n = i + 1;
      box.querySelector('legend').textContent = `Data disk ${n}`;
      const [urlLabel, sizeLabel] = box.querySelectorAll('label');
      urlLabel.textContent = `Data disk ${n} file`;
      sizeLabel.textContent = `Data disk ${n} min disk (GB)`;
      box.querySelector('button').textContent = `Remove data disk ${n}`;
    });
  };
  const addDisk = h('button', {type: 'button', text: 'Add a data disk', onclick: () => {
    const url = h('input', {required: true, placeholder: 'bucket:file'});
    const size = h('input', {type: 'number', min: 1, max: 2048, value: '40', required: true});
    const box = h('fieldset', {class: 'data-disk'}, h('legend'), field('', url, 'bucket:file'), field('', size),
      h('button', {type: 'button', onclick: () => { box.remove(); renumber(); addDisk.focus(); }}));
    box.dataset.disk = '1';
    disks.append(box);
    renumber();
    url.focus();
  }});

  const form = h('form', {class: 'import', 'aria-labelledby': 'import-h'},
    h('fieldset', {}, h('legend', {text: 'Image file'}), field('Bucket', bucket), field('Image file', file),
      h('div', {class: 'inline'}, field('New bucket', newBucket), makeBucket)),
    h('fieldset', {}, h('legend', {text: 'Image'}), field('Name', name), field('Description', description),
      field('OS version', os), field('Min disk (GB)', minDisk),
      field('Tags', tags, 'key=value pairs, comma-separated (at most 10)'),
      h('div', {class: 'field checkbox'}, quick, h('label', {for: (quick.id = 'quick-import'), text: 'Quick import (raw files only, no conversion)'}))),
    h('fieldset', {}, h('legend', {text: 'Data disks'}), disks, addDisk),
    h('button', {type: 'submit', class: 'primary', text: 'Import image'}));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    if (!bucket.value || !file.value) { ctx.ui.error('Choose the image file: a bucket and a file in it.'); return; }
    if (!name.value.trim()) { ctx.ui.error('Give the image a name.'); name.focus(); return; }
    const body = {name: name.value.trim(), image_url: `${bucket.value}:${file.value}`, min_disk: Number(minDisk.value)};
    if (description.value) body.description = description.value;
    if (os.value) body.os_version = os.value;
    const pairs = tags.value.split(',').map((t) => t.trim()).filter(Boolean);
    if (pairs.length) {
      body.image_tags = pairs.map((t) => { const [key, ...rest] = t.split('='); return {key: key.trim(), value: rest.join('=').trim()}; });
    }
    const dataDisks = [...disks.querySelectorAll('fieldset')].map((box) => {
      const [url, size] = box.querySelectorAll('input');
      return {image_url: url.value.trim(), min_disk: Number(size.value)};
    });
    if (quick.checked && dataDisks.length) {
      // IMS's quick import has no data_images: refuse rather than import the system disk alone.
      ctx.ui.error('Quick import takes no data disks: remove them, or import without quick import.');
      return;
    }
    if (dataDisks.length) body.data_images = dataDisks;
    let path = '/v2/cloudimages/action';
    if (quick.checked) { path = '/v2/cloudimages/quickimport/action'; body.type = 'ECS'; }
    const r = await ctx.ui.run(() => api('POST', path, {body}));
    if (r) { ctx.ui.flash(`Import started: job ${r.job_id}.`); ctx.go(`#/jobs/${enc(r.job_id)}`); }
  });
  const up = uploader(ctx, () => bucket.value, async (key) => fillFiles(key));
  clear(ctx.view, h('h1', {id: 'import-h', text: 'Import an image'}),
    h('section', {'aria-labelledby': 'upload-h'}, h('h2', {id: 'upload-h', text: 'Upload a local file to the bucket'}), up),
    form);
  await fillFiles();
}

export async function keysView(ctx) {
  const s = ctx.session;
  const {credentials} = await api('GET', `/v3.0/OS-CREDENTIAL/credentials?user_id=${enc(s.userId)}`,
    {signal: ctx.signal});
  const secretBox = h('div', {class: 'secret', hidden: true, role: 'region', 'aria-label': 'New access key'});
  const rows = credentials.map((c) => [c.access, c.status, c.description || '', c.create_time || '',
    h('div', {class: 'actions'},
      h('button', {type: 'button', text: c.status === 'active' ? 'Disable' : 'Enable',
        'aria-label': `${c.status === 'active' ? 'Disable' : 'Enable'} key ${c.access}`, onclick: async () => {
          const status = c.status === 'active' ? 'inactive' : 'active';
          const r = await ctx.ui.run(() => api('PUT', `/v3.0/OS-CREDENTIAL/credentials/${enc(c.access)}`,
            {body: {credential: {status}}}));
          if (r) { await keysView(ctx); ctx.ui.notice(`Key ${c.access} is now ${status}.`); }
        }}),
      h('button', {type: 'button', class: 'danger', text: 'Delete', 'aria-label': `Delete key ${c.access}`,
        onclick: async () => {
          if (!await confirmDialog(`Delete access key ${c.access}? Programs using it stop working.`)) return;
          const r = await ctx.ui.run(() => api('DELETE', `/v3.0/OS-CREDENTIAL/credentials/${enc(c.access)}`));
          if (r !== undefined) { await keysView(ctx); ctx.ui.notice(`Key ${c.access} deleted.`); }
        }}))]);
  const description = h('input', {maxlength: 255});
  const form = h('form', {class: 'inline', 'aria-label': 'Create an access key'}, field('Description', description),
    h('button', {type: 'submit', text: 'Create access key'}));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const body = {credential: {user_id: s.userId}};
    if (description.value) body.credential.description = description.value;
    const r = await ctx.ui.run(() => api('POST', '/v3.0/OS-CREDENTIAL/credentials', {body}));
    if (!r) return;
    await keysView(ctx);
    showSecret(ctx, r.credential);
  });
  clear(ctx.view, h('h1', {text: 'Access keys'}), secretBox, form,
    table(`Access keys of ${s.userName}`, ['Access key', 'Status', 'Description', 'Created', 'Actions'], rows,
      'No access keys.'));
}

function showSecret(ctx, credential) {
  const box = ctx.view.querySelector('.secret');
  const secret = h('code', {id: 'new-secret', text: credential.secret});
  const copied = h('span', {'aria-live': 'polite'});
  clear(box, h('h2', {text: 'New access key'}),
    h('p', {text: 'The secret access key is shown this once only: copy it now and keep it safe.'}),
    h('dl', {class: 'attributes'}, h('dt', {text: 'Access key'}), h('dd', {}, h('code', {text: credential.access})),
      h('dt', {text: 'Secret access key'}), h('dd', {}, secret)),
    h('div', {class: 'actions'},
      h('button', {type: 'button', text: 'Copy secret', onclick: async () => {
        try { await navigator.clipboard.writeText(credential.secret); copied.textContent = 'Copied.'; } catch {
          const range = document.createRange(); range.selectNodeContents(secret);
          const sel = window.getSelection(); sel.removeAllRanges(); sel.addRange(range);
          copied.textContent = 'Selected: press Ctrl+C to copy.';
        }
      }}),
      h('button', {type: 'button', text: 'Done', onclick: () => { clear(box); box.hidden = true; }}), copied));
  box.hidden = false;
  box.querySelector('button').focus();
}

export async function quotaView(ctx) {
  const {quotas} = await api('GET', '/v1/cloudimages/quota', {signal: ctx.signal});
  clear(ctx.view, h('h1', {text: 'Quota'}),
    table(`Quota of project ${ctx.session.projectName}`, ['Resource', 'Used', 'Quota'],
      quotas.resources.map((r) => [r.type, String(r.used), String(r.quota)]), 'No quotas.'));
}
