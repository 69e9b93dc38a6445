// A group's page: Details, Inbound rules, Outbound rules and Tags tabs; each rule with its sgr-
// ID, description, tags and (ours) hit count; Manage tags on the group or a selected rule;
// Delete security group with AWS's refusals in words.
'use strict';

/// AWS's refusals of DeleteSecurityGroup, explained.
function deleteRefusal(e) {
  const why = {
    DependencyViolation: 'The group is still in use: it is attached to an instance, or another group has a rule that references it. ' +
      'Change the instances\u2019 security groups and remove the referencing rules first.',
    CannotDelete: 'This is the VPC\u2019s default security group, which cannot be deleted (it goes with the VPC).',
    'InvalidGroup.Reserved': 'This is the VPC\u2019s default security group, which cannot be deleted (it goes with the VPC).',
  }[e.code];
  return why ? `${why} (${e.code}: ${e.message})` : `${e.code}: ${e.message}`;
}

/// The Manage tags editor of a resource (group or rule): saves as DeleteTags + CreateTags.
function manageTags(resourceId, current, done) {
  const tags = current.map(t => ({ Key: t.Key, Value: t.Value }));
  const save = async () => {
    try {
      const wanted = tags.filter(t => t.Key);
      const gone = current.filter(t => !wanted.some(w => w.Key === t.Key));
      if (gone.length) await call('DeleteTags', { Resources: [resourceId], Tags: gone.map(t => ({ Key: t.Key })) });
      if (wanted.length) await call('CreateTags', { Resources: [resourceId], Tags: wanted });
      flash(`Tags of ${resourceId} saved.`);
      done();
    } catch (e) { failed(e); }
  };
  return h('div', { class: 'card', id: 'manage-tags' }, h('h3', {}, `Manage tags: ${resourceId}`), tagEditor(tags),
    h('div', { class: 'toolbar' }, h('button', { type: 'button', onclick: done }, 'Cancel'),
      h('button', { type: 'button', class: 'primary', id: 'save-tags', onclick: save }, 'Save changes')));
}

function rulesTable(rules, hits, selected) {
  return h('table', { class: 'rules' }, h('thead', {}, h('tr', {},
    ['', 'Security group rule ID', 'Type', 'Protocol', 'Port range', 'Source / destination', 'Description', 'Tags', 'Hits (ours)'].map(t => h('th', {}, t)))),
  h('tbody', {}, rules.map(r => h('tr', { 'data-rule-id': r.SecurityGroupRuleId },
    h('td', {}, h('input', { type: 'radio', name: 'rule', class: 'rule-select', onchange: () => selected(r) })),
    h('td', {}, h('code', {}, r.SecurityGroupRuleId)),
    h('td', {}, presetOf(r.IpProtocol, r.FromPort, r.ToPort)),
    h('td', {}, PROTOCOL_NAMES[r.IpProtocol] || r.IpProtocol),
    h('td', {}, portText(r.IpProtocol, r.FromPort, r.ToPort)),
    h('td', {}, peerOf(r)), h('td', { class: 'rule-description' }, r.Description || '–'),
    h('td', { class: 'rule-tags' }, (r.Tags || []).map(t => `${t.Key}=${t.Value}`).join(', ') || '–'),
    h('td', { class: 'rule-hits' }, String(hits[r.SecurityGroupRuleId] || 0))))));
}

const GroupDetail = {
  tab: 'details',

  async show(groupId, tab = GroupDetail.tab) {
    GroupDetail.tab = tab;
    const [groups, described, stats] = await Promise.all([
      call('DescribeSecurityGroups', { GroupIds: [groupId] }),
      call('DescribeSecurityGroupRules', { Filters: [{ Name: 'group-id', Values: [groupId] }] }),
      call('GetDataplaneStatistics', {}).catch(() => ({ RuleHits: {} })),
    ]);
    const group = groups.SecurityGroups[0];
    const rules = described.SecurityGroupRules;
    const inbound = rules.filter(r => !r.IsEgress), outbound = rules.filter(r => r.IsEgress);
    const hits = stats.RuleHits || {};
    const panel = h('div', { id: 'tab-panel' });
    const reload = () => GroupDetail.show(groupId, GroupDetail.tab);
    let selectedRule = null;
    const ruleTab = (list, direction) => h('div', {},
      h('div', { class: 'toolbar' },
        h('h3', {}, `${direction === 'inbound' ? 'Inbound' : 'Outbound'} rules (${list.length})`), h('span', { class: 'spacer' }),
        h('button', { id: 'rule-manage-tags', onclick: () => {
          if (!selectedRule) { flash('Select a rule first.', false); return; }
          panel.append(manageTags(selectedRule.SecurityGroupRuleId, selectedRule.Tags || [], reload));
        } }, 'Manage tags'),
        h('a', { href: `#/groups/${groupId}/edit-${direction}` }, h('button', { id: `edit-${direction}` }, `Edit ${direction} rules`))),
      rulesTable(list, hits, (r) => { selectedRule = r; }));
    const tabs = {
      details: null,
      inbound: () => ruleTab(inbound, 'inbound'),
      outbound: () => ruleTab(outbound, 'outbound'),
      tags: () => h('div', {}, h('div', { class: 'toolbar' }, h('h3', {}, 'Tags'), h('span', { class: 'spacer' }),
        h('button', { id: 'group-manage-tags', onclick: () => panel.append(manageTags(groupId, group.Tags || [], reload)) }, 'Manage tags')),
      h('table', { id: 'group-tags' }, h('tbody', {}, (group.Tags || []).map(t => h('tr', {}, h('td', {}, t.Key), h('td', {}, t.Value)))))),
    };
    tabs.details = () => h('table', { id: 'details' }, h('tbody', {}, [
      ['Security group name', group.GroupName], ['Security group ID', group.GroupId], ['Description', group.Description],
      ['VPC ID', group.VpcId], ['Owner', group.OwnerId],
      ['Inbound rules count', `${inbound.length} Permission entries`], ['Outbound rules count', `${outbound.length} Permission entries`],
    ].map(([k, v]) => h('tr', {}, h('th', {}, k), h('td', {}, v)))));
    const tabBar = h('div', { class: 'toolbar tabs' }, Object.keys(tabs).map(name => h('button', {
      id: `tab-${name}`, class: name === tab ? 'active' : '', onclick: () => GroupDetail.show(groupId, name),
    }, { details: 'Details', inbound: 'Inbound rules', outbound: 'Outbound rules', tags: 'Tags' }[name])));
    const remove = async () => {
      try {
        await call('DeleteSecurityGroup', { GroupId: groupId });
        flashNext(`Security group ${groupId} deleted.`);
        location.hash = '#/groups';
      } catch (e) { flash(deleteRefusal(e), false); }
    };
    panel.append(tabs[tab]());
    show(h('div', { class: 'card' },
      h('div', { class: 'toolbar' }, h('h2', {}, `${groupId} - ${group.GroupName}`), h('span', { class: 'spacer' }),
        h('a', { href: `#/groups/${groupId}/copy` }, h('button', { id: 'copy-group' }, 'Copy to new security group')),
        h('button', { class: 'danger', id: 'delete-group', onclick: remove }, 'Delete security group')),
      tabBar, panel));
  },
};
