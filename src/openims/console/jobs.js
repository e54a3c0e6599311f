// Jobs: the project's list (GET /v1/{project}/jobs, an openims extension) and one job live (its event stream).

import {api, enc, followJob} from './api.js';
import {clear, field, h, select, table} from './dom.js';

const STATUSES = [['', 'Any'], ['INIT', 'INIT'], ['RUNNING', 'RUNNING'], ['SUCCESS', 'SUCCESS'], ['FAIL', 'FAIL']];
const TYPES = [['', 'Any'], ['imsImportImageJob', 'Import (system disk)'], ['imsImportDataImageJob', 'Import (data disk)'],
  ['imsNativeImportImageJob', 'Register'], ['imsNativeExportImageJob', 'Export'],
  ['imsCopyImageInRegionJob', 'Copy'], ['imsAddImageMembersJob', 'Share'], ['imsDelImageMembersJob', 'Unshare'],
  ['imsUpdateImageMembersJob', 'Accept or reject'], ['glanceImageImportJob', 'Glance import']];
const state = {status: '', type: '', markers: []};

function percent(job) {
  if (job.status === 'SUCCESS') return 100;
  return Number(job.entities?.process_percent ?? job.progress ?? 0);
}

/** How long the job ran (so far, while it runs), in words: 1 h 2 min, 3 min 4 s, 5 s. */
export function duration(job) {
  const begin = Date.parse(job.begin_time || '');
  if (Number.isNaN(begin)) return '';
  const end = job.end_time ? Date.parse(job.end_time) : Date.now();
  const s = Math.max(0, Math.round((end - begin) / 1000));
  if (s >= 3600) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  if (s >= 60) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${s} s`;
}

export async function jobsView(ctx) {
  const status = select(STATUSES, state.status); const type = select(TYPES, state.type);
  const results = h('div', {class: 'results'});
  const form = h('form', {class: 'filters', 'aria-label': 'Filter jobs'}, field('Status', status), field('Type', type),
    h('div', {class: 'field actions'}, h('button', {type: 'submit', text: 'Apply'})));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    Object.assign(state, {status: status.value, type: type.value, markers: []});
    ctx.ui.run(() => load(ctx, results));
  });
  clear(ctx.view, h('h1', {text: 'Jobs'}), form, results);
  await load(ctx, results);
}

async function load(ctx, results) {
  const q = new URLSearchParams({limit: '20'});
  if (state.status) q.set('status', state.status);
  if (state.type) q.set('job_type', state.type);
  if (state.markers.length) q.set('marker', state.markers.at(-1));
  const body = await api('GET', `/v1/${enc(ctx.session.projectId)}/jobs?${q}`, {signal: ctx.signal});
  const rows = body.jobs.map((j) => [h('a', {href: `#/jobs/${enc(j.job_id)}`, text: j.job_id}), j.job_type, j.status,
    `${percent(j).toFixed(0)} %`, j.entities?.image_name || j.entities?.image_id || '', j.begin_time || '',
    j.end_time || '', duration(j), j.status === 'FAIL' ? `${j.error_code || 'no code'}: ${j.fail_reason || ''}` : '']);
  const page = state.markers.length + 1;
  clear(results, table(`Jobs, page ${page}`, ['Job', 'Type', 'Status', 'Progress', 'Image', 'Began', 'Ended',
    'Duration', 'Error'], rows,
    'No jobs.'), h('div', {class: 'pager'},
    h('button', {type: 'button', text: 'Previous page', disabled: page === 1,
      onclick: () => { state.markers.pop(); ctx.ui.run(() => load(ctx, results)); }}),
    h('span', {text: `Page ${page}`}),
    h('button', {type: 'button', text: 'Next page', disabled: !body.next_marker,
      onclick: () => { state.markers.push(body.next_marker); ctx.ui.run(() => load(ctx, results)); }})));
}

export async function jobView(ctx, jobId) {
  const pid = ctx.session.projectId;
  const job = await api('GET', `/v1/${enc(pid)}/jobs/${enc(jobId)}`, {signal: ctx.signal});
  const bar = h('progress', {max: 100, value: percent(job), 'aria-labelledby': 'job-progress-label'});
  const label = h('span', {id: 'job-progress-label'});
  const status = h('p', {class: 'job-status', 'aria-live': 'polite'});
  const outcome = h('div', {class: 'outcome'});
  clear(ctx.view, h('div', {class: 'title-row'}, h('h1', {text: `Job ${jobId}`}), h('a', {href: '#/jobs', text: 'All jobs'})),
    h('p', {class: 'meta', text: job.job_type}), h('div', {class: 'progress-row'}, label, bar), status, outcome);
  const show = (event) => {
    const p = percent(event);
    bar.value = p;
    label.textContent = `Progress ${p.toFixed(0)} %`;
    status.textContent = `Status: ${event.status}${event.stage ? ` (${event.stage})` : ''}`;
    status.dataset.status = event.status;
    if (event.status === 'SUCCESS' || event.status === 'FAIL') {
      const imageId = event.entities?.image_id;
      clear(outcome, event.status === 'FAIL'
        ? h('p', {class: 'error', text: `The job failed: ${event.fail_reason || ''} (${event.error_code || 'no code'})`})
        : h('p', {}, 'The job succeeded.', imageId ? [' ', h('a', {href: `#/images/${enc(imageId)}`, text: 'Open the image'})]
          : ''));
    }
  };
  show({...job, stage: ''});
  if (job.status === 'SUCCESS' || job.status === 'FAIL') return;
  // Not awaited: the view is shown while the stream runs; leaving the view aborts it.
  followJob(pid, jobId, show, ctx.signal).catch((err) => { if (err.name !== 'AbortError') ctx.ui.error(err); });
}
