"""The compiled CloudFormation template as CloudFormation would resolve it for one account and region.

Only the intrinsic functions the template uses: Ref (pseudo parameters and resources), Fn::Sub
(both forms), Fn::If with the template's Conditions (Fn::Equals, Fn::Not, Fn::And, Fn::Or),
Fn::Join and Fn::GetAtt (Arn of the queue and the function). Anything else raises, so a template
that grows a new function cannot be resolved wrongly in silence.
"""

import re
from dataclasses import dataclass

_SUB_VARIABLE = re.compile(r"\$\{([^}!]+)\}")
_NO_VALUE = object()  # Ref AWS::NoValue: the property or list item is removed


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
        """The value of one of the template's Conditions ("Always" for a resource without one)."""
        return name == "Always" or self._evaluate(self._conditions[name])

    def resolve(self, value):
        """`value` with every intrinsic function replaced by its result (Ref AWS::NoValue: left out)."""
        if isinstance(value, list):
            return [item for item in map(self.resolve, value) if item is not _NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) != 1 or not next(iter(value)).startswith(("Fn::", "Ref")):
            resolved = {key: self.resolve(item) for key, item in value.items()}
            return {key: item for key, item in resolved.items() if item is not _NO_VALUE}
        if value == {"Ref": "AWS::NoValue"}:
            return _NO_VALUE
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

    def dangling_references(self) -> list[tuple[str, str]]:
        """(resource, name) for each DependsOn, Ref or GetAtt of a created resource (or output)
        that names a resource this template does not create: CloudFormation refuses such a stack."""
        resources = self.template["Resources"]
        created = {
            name
            for name, resource in resources.items()
            if self.condition(resource.get("Condition", "Always"))
        }
        users = {name: resources[name] for name in created}
        users |= {
            f"Outputs.{name}": output
            for name, output in self.template.get("Outputs", {}).items()
            if self.condition(output.get("Condition", "Always"))
        }
        found = []
        for user, definition in users.items():
            depends_on = definition.get("DependsOn", [])
            names = [depends_on] if isinstance(depends_on, str) else list(depends_on)
            names += self._referenced(definition)
            found += [(user, name) for name in names if name in resources and name not in created]
        return found

    def _referenced(self, value) -> list[str]:
        """The resources `value` references through Ref, Fn::GetAtt and Fn::Sub, following only
        the Fn::If branches the conditions take."""
        if isinstance(value, list):
            return [name for item in value for name in self._referenced(item)]
        if not isinstance(value, dict):
            return []
        if len(value) == 1:
            ((function, argument),) = value.items()
            if function == "Ref":
                return [argument]
            if function == "Fn::GetAtt":
                return [argument[0]]
            if function == "Fn::If":
                name, when_true, when_false = argument
                return self._referenced(when_true if self.condition(name) else when_false)
            if function == "Fn::Sub":
                text, variables = (argument, {}) if isinstance(argument, str) else argument
                named = [
                    match.split(".", 1)[0] for match in _SUB_VARIABLE.findall(text) if match not in variables
                ]
                return named + self._referenced(list(variables.values()))
        return [name for key, item in value.items() if key != "Condition" for name in self._referenced(item)]

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
            named = resource.get("Properties", {}).get("BucketName")
            return self.resolve(named) if named else f"{name.lower()}-generated-name"
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


def as_list(value) -> list:
    """An IAM field that may be one value or a list of them, as a list."""
    return value if isinstance(value, list) else [value]


def policy_statements(
    resources: dict, resolver: Resolver, role: str = "IamRoleLambdaExecution"
) -> list[dict]:
    """Statements of every policy of `role`, resolved, with Action and Resource always lists."""
    statements = []
    for policy in resources[role]["Properties"]["Policies"]:
        for statement in resolver.resolve(policy["PolicyDocument"]["Statement"]):
            statements.append(
                {**statement, **{key: as_list(statement.get(key, [])) for key in ("Action", "Resource")}}
            )
    return statements


def grants(statements: list[dict]) -> set[tuple[str, str]]:
    """Every (action, resource) pair the statements name."""
    return {(action, resource) for s in statements for action in s["Action"] for resource in s["Resource"]}
