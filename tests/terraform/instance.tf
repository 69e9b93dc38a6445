# An instance as people write it with Terraform: an image and type of the agent's catalogues,
# the default VPC's default subnet, user data that serves HTTP (run by an agent with `serve
# --run-user-data`), groups changed in place on the running instance (`stage = 2`, which the
# provider does with ModifyNetworkInterfaceAttribute on its primary interface), and tags.

variable "stage" {
  type    = number
  default = 1
}

# The address of the probe that tests the instance's groups with traffic.
variable "probe_cidr" { type = string }

locals {
  changed = var.stage == 2
}

data "aws_vpc" "default" {
  default = true
}

data "aws_subnet" "default" {
  vpc_id            = data.aws_vpc.default.id
  default_for_az    = true
  availability_zone = "us-east-1a"
}

resource "aws_security_group" "web" {
  name        = "web"
  description = "web"
  vpc_id      = data.aws_vpc.default.id
  ingress {
    from_port   = 80
    to_port     = 80
    protocol    = "tcp"
    cidr_blocks = [var.probe_cidr]
  }
}

resource "aws_security_group" "ssh" {
  name        = "ssh"
  description = "ssh"
  vpc_id      = data.aws_vpc.default.id
  ingress {
    from_port   = 22
    to_port     = 22
    protocol    = "tcp"
    cidr_blocks = [var.probe_cidr]
  }
}

resource "aws_instance" "web" {
  ami                    = "ami-0123456789abcdef0"
  instance_type          = "t3.micro"
  subnet_id              = data.aws_subnet.default.id
  vpc_security_group_ids = local.changed ? [aws_security_group.ssh.id] : [aws_security_group.web.id]
  user_data              = "python3 -m http.server 80"
  tags                   = { Name = local.changed ? "web-2" : "web" }
}

output "instance_id" { value = aws_instance.web.id }
output "private_ip" { value = aws_instance.web.private_ip }
output "primary_eni" { value = aws_instance.web.primary_network_interface_id }
