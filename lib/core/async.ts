// Waiting on two things at once.

/** Awaits both; when either fails, throws the local one's error first (it is the user's to fix). */
export async function bothOrFirstError<A, B>(remote: Promise<A>, local: Promise<B>): Promise<[A, B]> {
  const [a, b] = await Promise.allSettled([remote, local])
  if (b.status === 'rejected') throw b.reason
  if (a.status === 'rejected') throw a.reason
  return [a.value, b.value]
}
