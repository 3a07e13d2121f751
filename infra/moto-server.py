"""moto's server with one fix to its SQS queue (moto 5.2.5).

`Queue.delete_message` rebuilds the queue's message list without the lock that
`Queue.add_message` appends under, so a message sent while another one is
being deleted can vanish: its append lands in the old list, which the delete
then replaces. Real SQS never loses a sent message, and the tests that
consume a queue while workers keep sending to it (the fault tests, the
gateway's event-source loop) saw one go missing now and then. Here the
delete holds the same lock; nothing else about moto changes.
"""
import sys

from moto.server import main
from moto.sqs.models import Queue

_delete_message = Queue.delete_message


def _locked_delete_message(self, receipt_handle):
    with self._messages_lock:
        return _delete_message(self, receipt_handle)


Queue.delete_message = _locked_delete_message

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
