"""The compiled CloudFormation template as CloudFormation would resolve it for one account and region.

Only the intrinsic functions the template uses: Ref (pseudo parameters and resources), Fn::Sub
(both forms), Fn::If with the template's Conditions (Fn::Equals, Fn::Not, Fn::And, Fn::Or),
Fn::Join and Fn::GetAtt (Arn of the queue and the function). Anything else raises, so a template
that grows a new function cannot be resolved wrongly in silence.
"""

import re
from dataclasses import dataclass

_SUB_VARIABLE = re.compile(r"\$\{([^}!]+)\}")


@dataclass(frozen=True)
class Account:
    """Where the stack is deployed: the pseudo parameters' values."""

    account_id: str = "123456789012"
    region: str = "us-east-1"
    partition: str = "aws"
    stack_name: str = "thumbnailer-prod"

    def pseudo(self, name: str) -> str:
        """The value of a pseudo parameter (AWS::Region, ...)."""
        return {
            "AWS::AccountId": self.account_id,
            "AWS::Region": self.region,
            "AWS::Partition": self.partition,
            "AWS::StackName": self.stack_name,
            "AWS::URLSuffix": "amazonaws.com",
        }[name]


class Resolver:
    """Resolves values of one template for one account."""

    def __init__(self, template: dict, account: Account = Account()):
        self.template, self.account = template, account
        self._conditions = template.get("Conditions", {})

    def condition(self, name: str) -> bool:
        """The value of one of the template's Conditions."""
        return self._evaluate(self._conditions[name])

    def resolve(self, value):
        """`value` with every intrinsic function replaced by its result."""
        if isinstance(value, list):
            return [self.resolve(item) for item in value]
        if not isinstance(value, dict):
            return value
        if len(value) != 1 or not next(iter(value)).startswith(("Fn::", "Ref")):
            return {key: self.resolve(item) for key, item in value.items()}
        ((function, argument),) = value.items()
        if function == "Ref":
            return self._ref(argument)
        if function == "Fn::Sub":
            text, variables = (argument, {}) if isinstance(argument, str) else argument
            values = {name: self.resolve(item) for name, item in variables.items()}
            return _SUB_VARIABLE.sub(lambda match: self._sub_variable(match.group(1), values), text)
        if function == "Fn::If":
            name, when_true, when_false = argument
            return self.resolve(when_true if self.condition(name) else when_false)
        if function == "Fn::Join":
            separator, items = argument
            return separator.join(self.resolve(items))
        if function == "Fn::GetAtt":
            logical_id, attribute = argument
            return self._attribute(logical_id, attribute)
        raise NotImplementedError(f"{function} is not resolved here")

    def _evaluate(self, expression) -> bool:
        ((function, argument),) = expression.items()
        if function == "Fn::Equals":
            left, right = self.resolve(argument)
            return left == right
        if function == "Fn::Not":
            return not self._evaluate(argument[0])
        if function == "Fn::And":
            return all(self._evaluate(item) for item in argument)
        if function == "Fn::Or":
            return any(self._evaluate(item) for item in argument)
        if function == "Condition":
            return self.condition(argument)
        raise NotImplementedError(f"condition function {function}")

    def _sub_variable(self, name: str, values: dict) -> str:
        if name in values:
            return values[name]
        if name.startswith("AWS::"):
            return self.account.pseudo(name)
        if "." in name:
            return self._attribute(*name.split(".", 1))
        return self._ref(name)

    def _ref(self, name: str) -> str:
        if name.startswith("AWS::"):
            return self.account.pseudo(name)
        resource = self.template["Resources"][name]
        if resource["Type"] == "AWS::S3::Bucket":
            return self.resolve(resource["Properties"]["BucketName"])
        return name

    def _attribute(self, logical_id: str, attribute: str) -> str:
        resource = self.template["Resources"][logical_id]
        account = self.account
        if (resource["Type"], attribute) == ("AWS::SQS::Queue", "Arn"):
            name = self.resolve(resource["Properties"]["QueueName"])
            return f"arn:{account.partition}:sqs:{account.region}:{account.account_id}:{name}"
        if (resource["Type"], attribute) == ("AWS::Lambda::Function", "Arn"):
            name = self.resolve(resource["Properties"]["FunctionName"])
            return f"arn:{account.partition}:lambda:{account.region}:{account.account_id}:function:{name}"
        if (resource["Type"], attribute) == ("AWS::S3::Bucket", "Arn"):
            return f"arn:{account.partition}:s3:::{self._ref(logical_id)}"
        raise NotImplementedError(f"Fn::GetAtt {logical_id}.{attribute}")
