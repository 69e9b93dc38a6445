// The security groups list (search, VPC and tag filters, pages of the agent's own pagination),
// Create security group (basic details checked as you type) and Copy to new security group.
'use strict';

const PAGE_SIZE = 50;
/// The characters AWS allows in group names and descriptions (VPC groups).
const ALLOWED = /^[a-zA-Z0-9 ._\-:/()#,@[\]+=&;{}!$*]*$/;

function ruleCount(permissions) {
  let n = 0;
  for (const p of permissions) n += p.IpRanges.length + p.Ipv6Ranges.length + p.PrefixListIds.length + p.UserIdGroupPairs.length;
  return n;
}

/// The name and description checks the console makes as you type ('' when fine).
function nameProblem(name) {
  if (!name) return 'Enter a name.';
  if (name.length > 255) return 'Up to 255 characters.';
  if (!ALLOWED.test(name)) return 'Only a-z, A-Z, 0-9, spaces and ._-:/()#,@[]+=&;{}!$*';
  if (name.toLowerCase().startsWith('sg-')) return 'The name cannot start with sg-.';
  return '';
}
function descriptionProblem(description) {
  if (!description) return 'Enter a description.';
  if (description.length > 255) return 'Up to 255 characters.';
  if (!ALLOWED.test(description)) return 'Only a-z, A-Z, 0-9, spaces and ._-:/()#,@[]+=&;{}!$*';
  return '';
}

/// A tag editor over `tags` ([{Key, Value}], edited in place).
function tagEditor(tags, prefix = 'tag') {
  const body = h('tbody');
  const redraw = () => body.replaceChildren(...tags.map((tag, i) => h('tr', {},
    h('td', {}, h('input', { class: `${prefix}-key`, value: tag.Key, oninput: (e) => { tag.Key = e.target.value; } })),
    h('td', {}, h('input', { class: `${prefix}-value`, value: tag.Value, oninput: (e) => { tag.Value = e.target.value; } })),
    h('td', {}, h('button', { type: 'button', onclick: () => { tags.splice(i, 1); redraw(); } }, 'Remove')))));
  redraw();
  return h('div', {}, h('table', {}, h('thead', {}, h('tr', {}, h('th', {}, 'Key'), h('th', {}, 'Value - optional'), h('th', {}))), body),
    h('button', { type: 'button', class: `${prefix}-add`, onclick: () => { tags.push({ Key: '', Value: '' }); redraw(); } }, 'Add new tag'));
}

/// The basic-details form shared by create and copy: resolves the inputs and their checks.
async function basicDetails(initial) {
  const vpcs = (await call('DescribeVpcs', {})).Vpcs;
  const name = h('input', { id: 'group-name', value: initial.name || '' });
  const description = h('input', { id: 'group-description', value: initial.description || '' });
  const vpc = h('select', { id: 'group-vpc' }, vpcs.map(v => h('option', { value: v.VpcId },
    `${v.VpcId}${v.IsDefault ? ' (default)' : ''} ${tagValue(v.Tags, 'Name')}`)));
  vpc.value = initial.vpc || (vpcs.find(v => v.IsDefault) || vpcs[0] || {}).VpcId;
  const nameError = h('div', { class: 'invalid', id: 'group-name-error' });
  const descriptionError = h('div', { class: 'invalid', id: 'group-description-error' });
  let taken = false;
  let seq = 0;
  const check = async () => {
    const mine = ++seq;
    let problem = nameProblem(name.value);
    descriptionError.textContent = descriptionProblem(description.value);
    if (!problem) {
      const same = await call('DescribeSecurityGroups', { Filters: [
        { Name: 'group-name', Values: [name.value] }, { Name: 'vpc-id', Values: [vpc.value] }] });
      if (mine !== seq) return;
      taken = same.SecurityGroups.length > 0;
      if (taken) problem = `A security group named ${name.value} already exists in ${vpc.value}.`;
    }
    nameError.textContent = problem;
  };
  for (const input of [name, description]) input.addEventListener('input', check);
  vpc.addEventListener('change', check);
  const fields = h('div', { class: 'card' }, h('h3', {}, 'Basic details'),
    h('label', {}, 'Security group name', name), nameError,
    h('div', { class: 'hint' }, 'Name cannot be edited after creation.'),
    h('label', {}, 'Description', description), descriptionError,
    h('label', {}, 'VPC', vpc));
  const valid = () => !nameProblem(name.value) && !descriptionProblem(description.value) && !taken;
  return { fields, name, description, vpc, valid, check };
}

/// Creates the group, its rules and tags: the group with its tags, then the inbound rules,
/// then the outbound rules if they differ from the all-outbound rule a new group starts with.
async function createGroup(details, inboundRows, outboundRows, tags, copiedFrom) {
  const members = { GroupName: details.name.value, Description: details.description.value, VpcId: details.vpc.value };
  const kept = tags.filter(t => t.Key);
  if (kept.length) members.TagSpecifications = [{ ResourceType: 'security-group', Tags: kept }];
  const inbound = inboundRows.map(permissionOf);
  const outbound = outboundRows.map(permissionOf);
  const created = await call('CreateSecurityGroup', members);
  const groupId = created.GroupId;
  if (inbound.length) await call('AuthorizeSecurityGroupIngress', { GroupId: groupId, IpPermissions: inbound });
  const rules = (await call('DescribeSecurityGroupRules', { Filters: [{ Name: 'group-id', Values: [groupId] }] }))
    .SecurityGroupRules.filter(r => r.IsEgress);
  // Kept as the group started (the all-outbound rules the VPC's families get): nothing to edit.
  const isDefault = outboundRows.length === rules.length && outboundRows.every(row => !row.description.trim() &&
    rules.some(r => r.IpProtocol === row.protocol && row.protocol === '-1' && peerOf(r) === row.peer.trim()));
  if (!isDefault) {
    const edit = { GroupId: groupId, Direction: 'egress', RevokeSecurityGroupRuleIds: rules.map(r => r.SecurityGroupRuleId), IpPermissions: outbound };
    if (edit.RevokeSecurityGroupRuleIds.length || edit.IpPermissions.length) await call('EditSecurityGroupRules', edit);
  }
  flashNext(`Security group (${groupId} | ${members.GroupName}) was created successfully${copiedFrom ? ` from ${copiedFrom}` : ''}`);
  location.hash = `#/groups/${groupId}`;
}

const Groups = {
  filters: { search: '', vpc: '', tag: '' },
  tokens: [null],

  async list() {
    const f = Groups.filters;
    const vpcs = (await call('DescribeVpcs', {})).Vpcs;
    const search = h('input', { id: 'group-search', placeholder: 'Find by name or ID', value: f.search });
    const vpc = h('select', { id: 'group-vpc-filter' }, h('option', { value: '' }, 'All VPCs'), vpcs.map(v => h('option', { value: v.VpcId }, v.VpcId)));
    vpc.value = f.vpc;
    const tag = h('input', { id: 'group-tag-filter', placeholder: 'Tag key=value', value: f.tag });
    const table = h('tbody', { id: 'group-rows' });
    const pageLine = h('span', { id: 'group-page' });
    const prev = h('button', { id: 'group-prev' }, '‹ Previous');
    const next = h('button', { id: 'group-next' }, 'Next ›');
    let page = 0;
    let token = null;
    const request = () => {
      const filters = [];
      const term = f.search.trim();
      if (term.startsWith('sg-')) filters.push({ Name: 'group-id', Values: [`${term}*`] });
      else if (term) filters.push({ Name: 'group-name', Values: [`*${term}*`] });
      if (f.vpc) filters.push({ Name: 'vpc-id', Values: [f.vpc] });
      const [key, value] = f.tag.split('=');
      if (key && key.trim()) filters.push(value === undefined
        ? { Name: 'tag-key', Values: [key.trim()] } : { Name: `tag:${key.trim()}`, Values: [value.trim()] });
      return { Filters: filters, MaxResults: PAGE_SIZE };
    };
    const load = async () => {
      const members = request();
      if (Groups.tokens[page]) members.NextToken = Groups.tokens[page];
      const answer = await call('DescribeSecurityGroups', members);
      token = answer.NextToken || null;
      Groups.tokens[page + 1] = token;
      table.replaceChildren(...answer.SecurityGroups.map(g => h('tr', { 'data-group-id': g.GroupId },
        h('td', {}, tagValue(g.Tags, 'Name') || '–'),
        h('td', {}, h('a', { href: `#/groups/${g.GroupId}`, class: 'group-link' }, g.GroupId)),
        h('td', { class: 'group-name' }, g.GroupName), h('td', {}, g.VpcId), h('td', {}, g.Description),
        h('td', {}, g.OwnerId),
        h('td', { class: 'inbound-count' }, `${ruleCount(g.IpPermissions)} Permission entries`),
        h('td', { class: 'outbound-count' }, `${ruleCount(g.IpPermissionsEgress)} Permission entries`))));
      pageLine.textContent = `Page ${page + 1}`;
      prev.disabled = page === 0;
      next.disabled = !token;
      document.body.dataset.groupsLoaded = String(Date.now());
    };
    const refilter = () => {
      f.search = search.value; f.vpc = vpc.value; f.tag = tag.value;
      page = 0; Groups.tokens = [null];
      load().catch(failed);
    };
    search.addEventListener('input', refilter);
    tag.addEventListener('change', refilter);
    vpc.addEventListener('change', refilter);
    prev.addEventListener('click', () => { page -= 1; load().catch(failed); });
    next.addEventListener('click', () => { page += 1; load().catch(failed); });
    show(h('div', { class: 'card' },
      h('div', { class: 'toolbar' }, h('h2', {}, 'Security Groups'), h('span', { class: 'spacer' }),
        h('a', { href: '#/groups/create' }, h('button', { class: 'primary', id: 'create-group' }, 'Create security group'))),
      h('div', { class: 'toolbar' }, search, vpc, tag, prev, pageLine, next),
      h('table', {}, h('thead', {}, h('tr', {}, ['Name', 'Security group ID', 'Security group name', 'VPC ID', 'Description', 'Owner', 'Inbound rules count', 'Outbound rules count'].map(t => h('th', {}, t)))), table)));
    await load();
  },

  /// A new group starts with only the all-outbound rule (and its IPv6 twin in a VPC with IPv6).
  async create() {
    const vpcs = (await call('DescribeVpcs', {})).Vpcs;
    const vpc = vpcs.find(v => v.IsDefault) || vpcs[0] || {};
    const outbound = [rowOf({ SecurityGroupRuleId: null, IpProtocol: '-1', CidrIpv4: '0.0.0.0/0' })];
    if ((vpc.Ipv6CidrBlockAssociationSet || []).length) outbound.push(rowOf({ SecurityGroupRuleId: null, IpProtocol: '-1', CidrIpv6: '::/0' }));
    await Groups.form({ vpc: vpc.VpcId }, [], outbound, [], null);
  },

  /// Copy to new security group: the source's rules, editable, in a new group.
  async copy(sourceId) {
    const [groups, described] = await Promise.all([
      call('DescribeSecurityGroups', { GroupIds: [sourceId] }),
      call('DescribeSecurityGroupRules', { Filters: [{ Name: 'group-id', Values: [sourceId] }] }),
    ]);
    const source = groups.SecurityGroups[0];
    const fresh = (r) => Object.assign(rowOf(r), { id: null, original: null });
    const rules = described.SecurityGroupRules;
    await Groups.form({ name: `${source.GroupName}-copy`, description: source.Description, vpc: source.VpcId },
      rules.filter(r => !r.IsEgress).map(fresh), rules.filter(r => r.IsEgress).map(fresh),
      (source.Tags || []).map(t => ({ Key: t.Key, Value: t.Value })), sourceId);
  },

  async form(initial, inboundRows, outboundRows, tags, copiedFrom) {
    const details = await basicDetails(initial);
    const peers = await peerChoices();
    const ipv6 = await vpcHasIpv6(details.vpc.value);
    const submit = h('button', { class: 'primary', id: 'create-submit', type: 'button' }, 'Create security group');
    submit.addEventListener('click', async () => {
      await details.check();
      if (!details.valid()) { flash('Fix the basic details first.', false); return; }
      try { await createGroup(details, inboundRows, outboundRows, tags, copiedFrom); } catch (e) { failed(e); }
    });
    show(h('h2', {}, copiedFrom ? `Copy ${copiedFrom} to a new security group` : 'Create security group'),
      details.fields,
      h('div', { class: 'card', id: 'create-inbound' }, h('h3', {}, 'Inbound rules'), ruleEditor(inboundRows, { inbound: true, peers, ipv6 })),
      h('div', { class: 'card', id: 'create-outbound' }, h('h3', {}, 'Outbound rules'), ruleEditor(outboundRows, { inbound: false, peers, ipv6 })),
      h('div', { class: 'card' }, h('h3', {}, 'Tags - optional'), tagEditor(tags)),
      h('div', { class: 'toolbar' }, h('a', { href: '#/groups' }, 'Cancel'), submit));
    if (initial.name) await details.check();
  },
};
