"""A handler written for AWS Lambda's Kafka trigger; it runs unchanged under triggerfish."""

import base64
import json
import os


def handler(event, context):
    total = 0.0
    for partition, records in event["records"].items():
        for record in records:
            order = json.loads(base64.b64decode(record["value"]))
            total += order["amount"]
            print(f"{partition}@{record['offset']}: order {order['id']} from {order['customer']}: "
                  f"{order['amount']:.2f} {os.environ['CURRENCY']}")
    print(f"batch of {sum(len(r) for r in event['records'].values())} orders, total {total:.2f}; "
          f"{context.get_remaining_time_in_millis()} ms left of {context.function_name}'s timeout")
    return {"orders": sum(len(r) for r in event["records"].values()), "total": round(total, 2)}
