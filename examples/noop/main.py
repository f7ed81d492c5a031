"""Does nothing: the function the benchmarks drain."""


def handler(event, context):
    return None
