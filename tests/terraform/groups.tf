# Security groups as people write them with Terraform, against the agent: every inline rule
# kind, both standalone rule styles, the default group, a managed prefix list, a subnet, a
# network interface attached to a running instance with a second group attached on top, and the
# data sources that read them. `stage = 2` changes every resource in place.

variable "stage" {
  type    = number
  default = 1
}

# A running (local) instance the interface is attached to, and the address of the probe that
# tests it with traffic.
variable "server" { type = string }
variable "probe_cidr" { type = string }

locals {
  changed = var.stage == 2
}

data "aws_vpc" "default" {
  default = true
}

resource "aws_ec2_managed_prefix_list" "office" {
  name           = "office"
  address_family = "IPv4"
  max_entries    = 5
  entry {
    cidr        = "192.0.2.0/24"
    description = "hq"
  }
  dynamic "entry" {
    for_each = local.changed ? ["198.51.100.0/24"] : []
    content {
      cidr        = entry.value
      description = "branch"
    }
  }
  tags = { env = "test" }
}

resource "aws_security_group" "lb" {
  name        = "lb"
  description = "load balancers"
  vpc_id      = data.aws_vpc.default.id
  tags        = { Name = "lb" }
}

resource "aws_security_group" "web" {
  name                   = "web"
  description            = "web tier"
  vpc_id                 = data.aws_vpc.default.id
  revoke_rules_on_delete = true

  ingress {
    description     = "http from lb"
    from_port       = 80
    to_port         = 80
    protocol        = "tcp"
    security_groups = [aws_security_group.lb.id]
  }
  ingress {
    from_port        = local.changed ? 8443 : 443
    to_port          = local.changed ? 8443 : 443
    protocol         = "tcp"
    cidr_blocks      = ["10.0.0.0/8"]
    ipv6_cidr_blocks = ["2001:db8::/32"]
  }
  ingress {
    from_port = 0
    to_port   = 0
    protocol  = "-1"
    self      = true
  }
  ingress {
    from_port       = 22
    to_port         = 22
    protocol        = "tcp"
    prefix_list_ids = [aws_ec2_managed_prefix_list.office.id]
  }
  ingress {
    from_port   = 8
    to_port     = 0
    protocol    = "icmp"
    cidr_blocks = ["0.0.0.0/0"]
  }
  # Replaces AWS's default allow-all egress (the provider revokes it at create).
  egress {
    from_port   = 0
    to_port     = 0
    protocol    = "-1"
    cidr_blocks = ["172.31.0.0/16"]
  }
  tags = local.changed ? { Name = "web", tier = "front" } : { Name = "web" }
}

resource "aws_security_group" "db" {
  name        = "db"
  description = "db tier"
  vpc_id      = data.aws_vpc.default.id
}

resource "aws_security_group_rule" "db_from_web" {
  type                     = "ingress"
  from_port                = 5432
  to_port                  = 5432
  protocol                 = "tcp"
  security_group_id        = aws_security_group.db.id
  source_security_group_id = aws_security_group.web.id
}

resource "aws_vpc_security_group_ingress_rule" "db_from_probe" {
  security_group_id = aws_security_group.db.id
  cidr_ipv4         = var.probe_cidr
  from_port         = local.changed ? 5433 : 5432
  to_port           = local.changed ? 5433 : 5432
  ip_protocol       = "tcp"
  description       = local.changed ? "probe, moved" : "probe"
  tags              = { Name = "probe" }
}

resource "aws_vpc_security_group_egress_rule" "db_out" {
  security_group_id = aws_security_group.db.id
  cidr_ipv6         = "::/0"
  ip_protocol       = "-1"
}

resource "aws_default_security_group" "default" {
  vpc_id = data.aws_vpc.default.id
  ingress {
    protocol  = -1
    self      = true
    from_port = 0
    to_port   = 0
  }
  egress {
    protocol    = -1
    from_port   = 0
    to_port     = 0
    cidr_blocks = ["0.0.0.0/0"]
  }
}

resource "aws_subnet" "b" {
  vpc_id     = data.aws_vpc.default.id
  cidr_block = "172.31.16.0/20"
  tags       = { Name = local.changed ? "b2" : "b" }
}

resource "aws_network_interface" "db" {
  subnet_id       = aws_subnet.b.id
  security_groups = [aws_security_group.db.id]
  description     = local.changed ? "db side, renamed" : "db side"
  attachment {
    instance     = var.server
    device_index = 1
  }
  # The sg_attachment below adds a group: as on AWS, the two must not fight over the set.
  lifecycle {
    ignore_changes = [security_groups]
  }
}

resource "aws_network_interface_sg_attachment" "lb" {
  security_group_id    = aws_security_group.lb.id
  network_interface_id = aws_network_interface.db.id
}

data "aws_subnet" "b" {
  id = aws_subnet.b.id
}

data "aws_subnets" "all" {
  filter {
    name   = "vpc-id"
    values = [data.aws_vpc.default.id]
  }
  depends_on = [aws_subnet.b]
}

data "aws_security_group" "web" {
  id = aws_security_group.web.id
}

data "aws_security_groups" "all" {
  filter {
    name   = "vpc-id"
    values = [data.aws_vpc.default.id]
  }
  depends_on = [aws_security_group.web, aws_security_group.db, aws_security_group.lb]
}

data "aws_network_interface" "db" {
  id         = aws_network_interface.db.id
  depends_on = [aws_network_interface_sg_attachment.lb]
}

data "aws_network_interfaces" "db_members" {
  filter {
    name   = "group-id"
    values = [aws_security_group.db.id]
  }
  depends_on = [aws_network_interface.db]
}

output "eni_ip" { value = aws_network_interface.db.private_ip }
output "eni_id" { value = aws_network_interface.db.id }
output "eni_groups" { value = sort(data.aws_network_interface.db.security_groups) }
output "subnet_cidr" { value = data.aws_subnet.b.cidr_block }
output "subnets" { value = sort(data.aws_subnets.all.ids) }
output "groups" { value = sort(data.aws_security_groups.all.ids) }
output "web_name" { value = data.aws_security_group.web.name }
output "db_members" { value = data.aws_network_interfaces.db_members.ids }
