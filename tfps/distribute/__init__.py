"""Scale-out with tf.distribute: the strategies a run trains under (`strategies`) and sampling
spread over the replicas of one machine (`replicated`). Imports no other room.
"""
