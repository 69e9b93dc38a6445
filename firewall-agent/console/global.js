// Global View: the groups and instances of every region, one table each, with counts per region.
'use strict';

const GlobalView = {
  async show() {
    const regions = (await call('DescribeRegions', { AllRegions: true })).Regions.map(r => r.RegionName);
    const per = await Promise.all(regions.map(async (region) => {
      const [groups, instances] = await Promise.all([
        call('DescribeSecurityGroups', {}, region), call('DescribeInstances', {}, region)]);
      return { region, groups: groups.SecurityGroups, instances: instancesOf(instances) };
    }));
    const counts = h('table', { id: 'global-counts' }, h('thead', {}, h('tr', {}, ['Region', 'Security groups', 'Instances'].map(t => h('th', {}, t)))),
      h('tbody', {}, per.map(p => h('tr', { 'data-region': p.region }, h('td', {}, p.region),
        h('td', { class: 'global-group-count' }, String(p.groups.length)), h('td', { class: 'global-instance-count' }, String(p.instances.length))))));
    const groups = h('table', { id: 'global-groups' }, h('thead', {}, h('tr', {}, ['Region', 'Security group ID', 'Name', 'VPC ID'].map(t => h('th', {}, t)))),
      h('tbody', {}, per.flatMap(p => p.groups.map(g => h('tr', {}, h('td', {}, p.region), h('td', {}, g.GroupId), h('td', {}, g.GroupName), h('td', {}, g.VpcId))))));
    const instances = h('table', { id: 'global-instances' }, h('thead', {}, h('tr', {}, ['Region', 'Instance ID', 'State', 'Security groups'].map(t => h('th', {}, t)))),
      h('tbody', {}, per.flatMap(p => p.instances.map(i => h('tr', {}, h('td', {}, p.region), h('td', {}, i.InstanceId), h('td', {}, i.State.Name),
        h('td', {}, i.SecurityGroups.map(g => g.GroupId).join(', ')))))));
    show(h('div', { class: 'card' }, h('h2', {}, 'Global View'), counts),
      h('div', { class: 'card' }, h('h3', {}, 'Security groups'), groups),
      h('div', { class: 'card' }, h('h3', {}, 'Instances'), instances));
  },
};
