//! The AWS CLI's shorthand syntax for structures: `Key=Value,Key=Value`, where a value is text,
//! a list `[a,b]`, or a nested structure `{Key=Value}`; lists may hold structures
//! (`IpRanges=[{CidrIp=10.0.0.0/8,Description=web},{CidrIp=192.0.2.0/24}]`). Values are text;
//! the typed request reads numbers from it.

use serde_json::{Map, Value};

/// Parses one shorthand structure.
pub fn parse(text: &str) -> Result<Value, String> {
    let mut parser = Parser {
        text: text.as_bytes(),
        at: 0,
    };
    let value = parser.structure(None)?;
    if parser.at != parser.text.len() {
        return Err(parser.error("an unexpected character"));
    }
    Ok(value)
}

struct Parser<'a> {
    text: &'a [u8],
    at: usize,
}

impl Parser<'_> {
    fn error(&self, what: &str) -> String {
        let shown = String::from_utf8_lossy(self.text);
        format!("{what} at position {} of: {shown}", self.at)
    }

    fn peek(&self) -> Option<u8> {
        self.text.get(self.at).copied()
    }

    fn eat(&mut self, byte: u8) -> bool {
        if self.peek() == Some(byte) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    /// `Key=Value,…` up to `end` (or the end of the text).
    fn structure(&mut self, end: Option<u8>) -> Result<Value, String> {
        let mut members = Map::new();
        loop {
            let start = self.at;
            while self
                .peek()
                .is_some_and(|b| b != b'=' && b != b',' && Some(b) != end)
            {
                self.at += 1;
            }
            let key = String::from_utf8_lossy(&self.text[start..self.at])
                .trim()
                .to_string();
            if key.is_empty() || !self.eat(b'=') {
                return Err(self.error("expected Key=Value"));
            }
            let value = self.value(&[b',', end.unwrap_or(0)])?;
            members.insert(key, value);
            if !self.eat(b',') {
                return Ok(Value::Object(members));
            }
        }
    }

    /// A value ending before one of `stops`.
    fn value(&mut self, stops: &[u8]) -> Result<Value, String> {
        if self.eat(b'[') {
            let mut items = Vec::new();
            if self.eat(b']') {
                return Ok(Value::Array(items));
            }
            loop {
                items.push(self.value(b",]")?);
                if self.eat(b']') {
                    return Ok(Value::Array(items));
                }
                if !self.eat(b',') {
                    return Err(self.error("expected ',' or ']'"));
                }
            }
        }
        if self.eat(b'{') {
            let structure = self.structure(Some(b'}'))?;
            if !self.eat(b'}') {
                return Err(self.error("expected '}'"));
            }
            return Ok(structure);
        }
        let start = self.at;
        while self.peek().is_some_and(|b| !stops.contains(&b)) {
            self.at += 1;
        }
        let text = String::from_utf8_lossy(&self.text[start..self.at]);
        Ok(Value::String(text.trim().to_string()))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn permissions_read_as_the_aws_cli_reads_them() {
        assert_eq!(
            parse("IpProtocol=tcp,FromPort=80,ToPort=80,IpRanges=[{CidrIp=10.0.0.0/8,Description=web tier},{CidrIp=192.0.2.0/24}]").unwrap(),
            json!({"IpProtocol": "tcp", "FromPort": "80", "ToPort": "80",
                   "IpRanges": [{"CidrIp": "10.0.0.0/8", "Description": "web tier"}, {"CidrIp": "192.0.2.0/24"}]})
        );
        assert_eq!(
            parse("SecurityGroupRuleId=sgr-1,SecurityGroupRule={IpProtocol=tcp,FromPort=22,ToPort=22,CidrIpv6=::/0}").unwrap(),
            json!({"SecurityGroupRuleId": "sgr-1", "SecurityGroupRule":
                   {"IpProtocol": "tcp", "FromPort": "22", "ToPort": "22", "CidrIpv6": "::/0"}})
        );
        assert_eq!(
            parse("Values=[a,b],Empty=[]").unwrap(),
            json!({"Values": ["a", "b"], "Empty": []})
        );
    }

    #[test]
    fn malformed_shorthand_says_where() {
        assert!(
            parse("IpProtocol")
                .unwrap_err()
                .contains("expected Key=Value")
        );
        assert!(
            parse("IpRanges=[{CidrIp=a}")
                .unwrap_err()
                .contains("expected ',' or ']'")
        );
        assert!(parse("A={B=c").unwrap_err().contains("expected '}'"));
    }
}
