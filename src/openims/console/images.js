// Images: the filtered, sorted, keyset-paged table (GET /v2/cloudimages) and one image's details.

import {api, enc} from './api.js';
import {clear, confirmDialog, field, formatBytes, h, select, table} from './dom.js';

const TYPES = [['', 'Any'], ['private', 'Private'], ['shared', 'Shared'], ['gold', 'Public']];
const STATUSES = [['', 'Any'], ['active', 'active'], ['queued', 'queued'], ['saving', 'saving'],
  ['deactivated', 'deactivated'], ['killed', 'killed']];
const OSES = [['', 'Any'], ['Linux', 'Linux'], ['Windows', 'Windows'], ['Other', 'Other']];
const SORTS = [['created_at', 'Created'], ['name', 'Name'], ['status', 'Status'], ['min_disk', 'Min disk'],
  ['updated_at', 'Updated']];
const TYPE_NAMES = {gold: 'public', private: 'private', shared: 'shared', market: 'market'};

// The list's state survives going to an image and back (kept for this tab only).
const listState = {filters: {status: '', type: '', os: '', tag: '', sort_key: 'created_at', sort_dir: 'desc'},
  limit: 20, markers: []};

export async function imagesView(ctx) {
  const {view, ui} = ctx;
  const f = listState.filters;
  const status = select(STATUSES, f.status); const type = select(TYPES, f.type); const os = select(OSES, f.os);
  const tag = h('input', {value: f.tag, placeholder: 'key.value'});
  const sortKey = select(SORTS, f.sort_key);
  const sortDir = select([['desc', 'Descending'], ['asc', 'Ascending']], f.sort_dir);
  const size = select([['10', '10'], ['20', '20'], ['50', '50'], ['100', '100']], String(listState.limit));
  const results = h('div', {class: 'results'});
  const form = h('form', {class: 'filters', 'aria-label': 'Filter images'},
    field('Status', status), field('Type', type), field('OS', os), field('Tag', tag, 'key.value'),
    field('Sort by', sortKey), field('Order', sortDir), field('Per page', size),
    h('div', {class: 'field actions'}, h('button', {type: 'submit', text: 'Apply'})));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    Object.assign(f, {status: status.value, type: type.value, os: os.value, tag: tag.value.trim(),
      sort_key: sortKey.value, sort_dir: sortDir.value});
    listState.limit = Number(size.value);
    listState.markers = [];
    ui.clearMessages();
    ui.run(() => load(ctx, results));
  });
  clear(view, h('div', {class: 'title-row'}, h('h1', {text: 'Images'}),
    h('a', {class: 'button primary', href: '#/import', text: 'Import an image'})), form, results);
  await load(ctx, results);
}

async function load(ctx, results) {
  const f = listState.filters;
  // One more than a page: whether a next page exists (a full last page must not lead to an empty one).
  const q = new URLSearchParams({limit: String(listState.limit + 1), sort_key: f.sort_key, sort_dir: f.sort_dir});
  if (f.status) q.set('status', f.status);
  if (f.type) q.set('__imagetype', f.type);
  if (f.os) q.set('__os_type', f.os);
  if (f.tag) q.set('tag', f.tag);
  const marker = listState.markers.at(-1);
  if (marker) q.set('marker', marker);
  const found = (await api('GET', `/v2/cloudimages?${q}`, {signal: ctx.signal})).images;
  const more = found.length > listState.limit;
  const images = found.slice(0, listState.limit);
  const rows = images.map((img) => [
    h('a', {href: `#/images/${enc(img.id)}`, text: img.name || img.id}),
    img.status, TYPE_NAMES[img.__imagetype] || img.__imagetype || '', img.__os_version || img.__os_type || '',
    img.disk_format || '', img.min_disk === undefined ? '' : `${img.min_disk} GB`,
    formatBytes(img.size), img.created_at || '']);
  const page = listState.markers.length + 1;
  const prev = h('button', {type: 'button', text: 'Previous page', disabled: page === 1, onclick: () => {
    listState.markers.pop(); ctx.ui.run(() => load(ctx, results));
  }});
  const next = h('button', {type: 'button', text: 'Next page', disabled: !more,
    onclick: () => { listState.markers.push(images.at(-1).id); ctx.ui.run(() => load(ctx, results)); }});
  clear(results, table(`Images, page ${page}`, ['Name', 'Status', 'Type', 'OS', 'Format', 'Min disk', 'Size',
    'Created'], rows, 'No images match.'), h('div', {class: 'pager'}, prev, h('span', {text: `Page ${page}`}), next));
}

function jobLink(ctx, what, jobId) {
  ctx.ui.flash(`${what}: job ${jobId} started.`);
  ctx.go(`#/jobs/${enc(jobId)}`);
}

export async function imageDetails(ctx, id) {
  const {view, session: s, ui} = ctx;
  const image = await api('GET', `/v2/images/${enc(id)}`, {signal: ctx.signal});
  const mine = image.owner === s.projectId;
  const attrs = h('dl', {class: 'attributes'});
  for (const key of Object.keys(image).sort()) {
    const value = image[key];
    attrs.append(h('dt', {text: key}), h('dd', {text: typeof value === 'object' && value !== null
      ? JSON.stringify(value) : String(value ?? '')}));
  }
  const sections = [h('div', {class: 'title-row'}, h('h1', {text: image.name || image.id}),
    h('a', {href: '#/images', text: 'Back to images'}))];
  sections.push(h('p', {class: 'meta', text: `${image.status} · ${mine ? 'owned by this project'
    : `shared with this project by ${image.owner}`}`}));
  if (mine) sections.push(editSection(ctx, image));
  sections.push(await tagsSection(ctx, image, mine));
  sections.push(await membersSection(ctx, image, mine));
  if (mine) sections.push(exportSection(ctx, image));
  sections.push(copySection(ctx, image));
  if (mine) {
    sections.push(h('section', {'aria-labelledby': 'delete-h'}, h('h2', {id: 'delete-h', text: 'Delete'}),
      h('button', {type: 'button', class: 'danger', text: 'Delete image', onclick: async () => {
        if (!await confirmDialog(`Delete image ${image.name}? This cannot be undone.`)) return;
        const done = await ui.run(() => api('DELETE', `/v2/images/${enc(id)}`));
        if (done !== undefined) { ui.flash(`Image ${image.name} deleted.`); ctx.go('#/images'); }
      }})));
  }
  sections.push(h('section', {'aria-labelledby': 'attrs-h'}, h('h2', {id: 'attrs-h', text: 'All attributes'}), attrs));
  clear(view, sections);
}

function editSection(ctx, image) {
  const name = h('input', {value: image.name || '', required: true, maxlength: 128});
  const description = h('textarea', {maxlength: 1024}, image.__description || '');
  const minDisk = h('input', {type: 'number', min: 1, max: 1024, value: String(image.min_disk ?? '')});
  const form = h('form', {'aria-labelledby': 'edit-h'}, h('h2', {id: 'edit-h', text: 'Name, description, min disk'}),
    field('Name', name), field('Description', description), field('Min disk (GB)', minDisk),
    h('button', {type: 'submit', text: 'Save changes'}));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const ops = [{op: 'replace', path: '/name', value: name.value.trim()},
      {op: 'replace', path: '/__description', value: description.value},
      {op: 'replace', path: '/min_disk', value: Number(minDisk.value)}];
    const ok = await ctx.ui.run(() => api('PATCH', `/v2/cloudimages/${enc(image.id)}`, {body: ops}));
    if (ok !== undefined) { await imageDetails(ctx, image.id); ctx.ui.notice('Changes saved.'); }
  });
  return form;
}

async function tagsSection(ctx, image, mine) {
  const pid = ctx.session.projectId;
  const base = `/v2/${enc(pid)}/images/${enc(image.id)}/tags`;
  const {tags} = mine ? await api('GET', base, {signal: ctx.signal})
    : {tags: (image.tags || []).map((t) => { const [key, ...rest] = t.split('.'); return {key, value: rest.join('.')}; })};
  const refresh = async (message) => { await imageDetails(ctx, image.id); ctx.ui.notice(message); };
  const rows = tags.map((t) => [t.key, t.value, mine ? h('button', {type: 'button', text: 'Remove',
    'aria-label': `Remove tag ${t.key}`, onclick: async () => {
      const ok = await ctx.ui.run(() => api('DELETE', `${base}/${enc(t.key)}`));
      if (ok !== undefined) await refresh(`Tag ${t.key} removed.`);
    }}) : '']);
  const section = h('section', {'aria-labelledby': 'tags-h'}, h('h2', {id: 'tags-h', text: 'Tags'}),
    table('Tags', ['Key', 'Value', ''], rows, 'No tags.'));
  if (mine) {
    const key = h('input', {required: true, maxlength: 128});
    const value = h('input', {maxlength: 255});
    const form = h('form', {class: 'inline', 'aria-label': 'Add or change a tag'}, field('Tag key', key),
      field('Tag value', value), h('button', {type: 'submit', text: 'Save tag'}));
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      const ok = await ctx.ui.run(() => api('POST', base, {body: {tag: {key: key.value.trim(), value: value.value}}}));
      if (ok !== undefined) await refresh(`Tag ${key.value.trim()} saved.`);
    });
    section.append(h('p', {class: 'hint', text: 'Saving an existing key changes its value.'}), form);
  }
  return section;
}

async function membersSection(ctx, image, mine) {
  const pid = ctx.session.projectId;
  const section = h('section', {'aria-labelledby': 'members-h'}, h('h2', {id: 'members-h', text: 'Members'}));
  if (!mine) {
    const answer = (status) => async () => {
      const r = await ctx.ui.run(() => api('PUT', '/v1/cloudimages/members',
        {body: {images: [image.id], project_id: pid, status}}));
      if (r) jobLink(ctx, `Image ${status}`, r.job_id);
    };
    section.append(h('p', {text: 'This image is shared with your project.'}), h('div', {class: 'actions'},
      h('button', {type: 'button', text: 'Accept', onclick: answer('accepted')}),
      h('button', {type: 'button', text: 'Reject', onclick: answer('rejected')})));
    return section;
  }
  let members = [];
  if (image.visibility === 'shared') {
    members = (await api('GET', `/v1/${enc(pid)}/cloudimages/${enc(image.id)}/members`, {signal: ctx.signal})).members;
  }
  const change = (method, project) => async () => {
    const r = await ctx.ui.run(() => api(method, '/v1/cloudimages/members',
      {body: {images: [image.id], projects: [project]}}));
    if (r) jobLink(ctx, method === 'POST' ? 'Sharing' : 'Removing a member', r.job_id);
  };
  section.append(table('Projects this image is shared with', ['Project', 'Status', ''], members.map((m) => [
    m.member_id, m.status, h('button', {type: 'button', text: 'Remove', 'aria-label': `Remove member ${m.member_id}`,
      onclick: change('DELETE', m.member_id)})]), 'Not shared with any project.'));
  const project = h('input', {required: true, placeholder: 'project id'});
  const form = h('form', {class: 'inline', 'aria-label': 'Share with a project'}, field('Project id', project),
    h('button', {type: 'submit', text: 'Share'}));
  form.addEventListener('submit', (e) => { e.preventDefault(); change('POST', project.value.trim())(); });
  section.append(form);
  return section;
}

function exportSection(ctx, image) {
  const target = h('input', {required: true, placeholder: 'bucket:path/file.qcow2'});
  const format = select([['qcow2', 'qcow2'], ['vmdk', 'vmdk'], ['vhd', 'vhd'], ['raw', 'raw']], 'qcow2');
  const form = h('form', {class: 'inline', 'aria-labelledby': 'export-h'}, h('h2', {id: 'export-h', text: 'Export'}),
    field('Bucket and file', target, 'bucket:path/file'), field('File format', format),
    h('button', {type: 'submit', text: 'Export'}));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const r = await ctx.ui.run(() => api('POST', `/v1/cloudimages/${enc(image.id)}/file`,
      {body: {bucket_url: target.value.trim(), file_format: format.value}}));
    if (r) jobLink(ctx, 'Export', r.job_id);
  });
  return form;
}

function copySection(ctx, image) {
  const name = h('input', {required: true, value: `${image.name || 'image'}-copy`, maxlength: 128});
  const description = h('input', {maxlength: 1024});
  const form = h('form', {class: 'inline', 'aria-labelledby': 'copy-h'}, h('h2', {id: 'copy-h', text: 'Copy'}),
    field('New name', name), field('New description', description), h('button', {type: 'submit', text: 'Copy'}));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const body = {name: name.value.trim()};
    if (description.value) body.description = description.value;
    const r = await ctx.ui.run(() => api('POST', `/v1/cloudimages/${enc(image.id)}/copy`, {body}));
    if (r) jobLink(ctx, 'Copy', r.job_id);
  });
  return form;
}
